// Assigns a role on one user-assigned managed identity (deployed into the identity's resource
// group): the built-in Managed Identity Operator on an Image Builder identity, so the app may
// attach exactly that identity to an image template it recreates, and no other identity.
targetScope = 'resourceGroup'

@description('Name of the existing user-assigned identity in this resource group.')
param identityName string

@description('GUID of the role definition to assign (a built-in role).')
param roleDefinitionName string

@description('Object id of the principal receiving the role.')
param principalId string

@description('Description recorded on the assignment; the azd hooks recognise the remediator\'s assignments by its prefix.')
param assignmentDescription string

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: identityName
}

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(identity.id, principalId, roleDefinitionName)
  scope: identity
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionName)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: assignmentDescription
  }
}

@description('Resource id of the role assignment.')
output id string = assignment.id
