// Lets one system topic's identity write dead letters: Storage Blob Data Contributor on
// the dead-letter container only (not the whole account, which also holds the app's
// deployment package and runtime state).

@description('Name of the app storage account.')
param storageAccountName string

@description('Name of the dead-letter container in that account.')
param containerName string

@description('Object id of the system topic\'s system-assigned identity.')
param topicPrincipalId string

var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName

  resource blobService 'blobServices' existing = {
    name: 'default'

    resource container 'containers' existing = {
      name: containerName
    }
  }
}

resource deadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage::blobService::container.id, topicPrincipalId, storageBlobDataContributor)
  scope: storage::blobService::container
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: topicPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Event Grid system topic dead-lettering for the Azure Update Remediator.'
  }
}

@description('Resource id of the role assignment.')
output id string = deadLetterWriter.id
