// Assigns a role to a principal at resource group scope (one module per managed resource
// group, deployed with scope: resourceGroup(subscriptionId, name)).
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

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, roleDefinitionName)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionName)
    principalId: principalId
    principalType: principalType
    description: 'Azure Update Remediator: least-privilege custom role for the app identity.'
  }
}

@description('Resource id of the role assignment.')
output id string = assignment.id
