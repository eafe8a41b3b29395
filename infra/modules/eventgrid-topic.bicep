// An Event Grid system topic for one Azure source (a resource group or a maintenance
// configuration), deployed into the source's own resource group. Its system-assigned
// identity is what dead-letters undeliverable events into the app storage.

@description('Name of the system topic.')
param name string

@description('Region of the system topic: \'global\' for resource groups, the maintenance configuration\'s region for maintenance configurations.')
param location string

@description('Topic type, e.g. Microsoft.Resources.ResourceGroups or Microsoft.Maintenance.MaintenanceConfigurations.')
@allowed([
  'Microsoft.Resources.ResourceGroups'
  'Microsoft.Maintenance.MaintenanceConfigurations'
])
param topicType string

@description('Resource id of the event source (the resource group or the maintenance configuration).')
param sourceId string

@description('Tags applied to the system topic.')
param tags object = {}

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: name
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: sourceId
    topicType: topicType
  }
}

@description('Name of the system topic (event subscriptions are its children).')
output name string = topic.name

@description('Resource id of the system topic.')
output id string = topic.id

@description('Object id of the topic\'s system-assigned identity (dead-letter writer).')
output principalId string = topic.identity.principalId
