// The one identity the remediator uses for everything: storage, Key Vault references,
// Application Insights ingestion and the managed scopes (custom role). A user-assigned
// identity outlives the app, so role assignments survive an app re-create.

@description('Name of the user-assigned managed identity.')
param name string

@description('Azure region of the identity.')
param location string

@description('Tags applied to the identity.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

@description('Resource id of the identity (for identity blocks and keyVaultReferenceIdentity).')
output id string = identity.id

@description('Client id (AZURE_CLIENT_ID, AzureWebJobsStorage__clientId).')
output clientId string = identity.properties.clientId

@description('Object id of the identity\'s service principal (role assignments).')
output principalId string = identity.properties.principalId

@description('Name of the identity.')
output name string = identity.name
