// Assigns a role to a principal at subscription scope (one module per subscription, so
// subscriptions other than the deployment's can be targeted with scope: subscription(id)).
targetScope = 'subscription'

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

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, roleDefinitionName)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionName)
    principalId: principalId
    principalType: principalType
    description: assignmentDescription
  }
}

@description('Resource id of the role assignment.')
output id string = assignment.id
