// An Event Grid system topic that already exists for a source, deployed by someone else: Event
// Grid allows only one per source (https://learn.microsoft.com/azure/event-grid/system-topics),
// and Update Manager's pre/post events create one for a maintenance configuration
// (https://learn.microsoft.com/azure/update-manager/pre-post-events-schedule-maintenance-configuration).
// Nothing here creates or changes the topic: the module reads its name and the object id of its
// system-assigned identity (the dead-letter writer), and refuses a topic whose source is not the
// source it was mapped to in existingSystemTopics.
//
// The topic must have a system-assigned identity: deadLetterWithResourceIdentity uses the
// identity set up on the parent topic. Update Manager creates its topic without one; enable it
// on the existing topic (portal: the topic's Identity page; Update-AzEventGridSystemTopic
// -EnableSystemAssignedIdentity $true; or a PATCH with identity, SystemTopicUpdateParameters), see
// https://learn.microsoft.com/azure/event-grid/enable-identity-system-topics. Without it the
// deployment stops at this module (the azd preprovision hook says so first).

@description('Name of the existing system topic (in this resource group).')
param name string

@description('Resource id of the source the topic was mapped to (an image resource group or a maintenance configuration).')
param sourceId string

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: name
}

module check 'guard-existing-topic.bicep' = {
  name: 'remediator-evgx-check-${uniqueString(topic.id)}'
  params: {
    topicSourceMustBeTheMappedSource: toLower(topic.properties.source) == toLower(sourceId)
  }
}

@description('Name of the system topic (the event subscription becomes its child).')
output name string = topic.name

@description('Resource id of the system topic.')
output id string = topic.id

@description('Object id of the topic\'s system-assigned identity (dead-letter writer).')
output principalId string = topic.identity.principalId

@description('Echo of the source check (true; the deployment fails before otherwise).')
output sourceChecked bool = check.outputs.ok
