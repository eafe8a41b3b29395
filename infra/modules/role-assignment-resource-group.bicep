// Assigns a role to a principal at resource group scope (one module per resource group,
// deployed with scope: resourceGroup(subscriptionId, name)), optionally with an Azure ABAC
// condition (condition version 2.0), e.g. blob reads limited to one container.
targetScope = 'resourceGroup'

@description('GUID (name) of the role definition to assign. The id is rebuilt in this scope\'s subscription, as ARM expects for assignments.')
param roleDefinitionName string

@description('Object id of the principal receiving the role.')
param principalId string

@description('Type of the principal.')
@allowed([
  'ServicePrincipal'
  'User'
  'Group'
])
param principalType string = 'ServicePrincipal'

@description('Description recorded on the assignment; the azd hooks recognise the remediator\'s assignments by its prefix.')
param assignmentDescription string = 'Azure Update Remediator: least-privilege custom role for the app identity.'

@description('Azure ABAC condition of the assignment (condition version 2.0). Empty: none.')
param condition string = ''

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, roleDefinitionName)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionName)
    principalId: principalId
    principalType: principalType
    description: assignmentDescription
    condition: empty(condition) ? null : condition
    conditionVersion: empty(condition) ? null : '2.0'
  }
}

@description('Resource id of the role assignment.')
output id string = assignment.id
