// One event subscription on a system topic, delivering to the app's Event Grid trigger
// (function on_event) with retries and identity-based dead-lettering to the app storage.

@description('Name of the existing system topic (in this resource group).')
param systemTopicName string

@description('Name of the event subscription.')
param name string

@description('Resource id of the Function App.')
param functionAppId string

@description('Name of the Event Grid triggered function in the app.')
param functionName string = 'on_event'

@description('Event types delivered to the function.')
@minLength(1)
param includedEventTypes array

@description('Advanced filters (Event Grid filter objects); empty for none.')
param advancedFilters array = []

@description('Resource id of the app storage account that receives dead letters.')
param deadLetterStorageAccountId string

@description('Container in that account that receives dead letters.')
param deadLetterContainerName string

@description('Delivery attempts before an event is dead-lettered (1-30).')
@minValue(1)
@maxValue(30)
param maxDeliveryAttempts int = 30

@description('Minutes an undelivered event is retried before it is dead-lettered (1-1440).')
@minValue(1)
@maxValue(1440)
param eventTimeToLiveInMinutes int = 1440

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: systemTopicName
}

resource eventSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: topic
  name: name
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/${functionName}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      includedEventTypes: includedEventTypes
      advancedFilters: advancedFilters
      enableAdvancedFilteringOnArrays: true
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterStorageAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

@description('Resource id of the event subscription.')
output id string = eventSubscription.id
