// Deployment-time check of an existing system topic named in existingSystemTopics, the same
// mechanism as guard.bicep (a boolean parameter whose only allowed value is true; ARM refuses
// the nested deployment and names the parameter).

@description('The existing system topic mapped to a source in existingSystemTopics must have that source (properties.source): otherwise the event subscription would listen to some other resource.')
@allowed([
  true
])
param topicSourceMustBeTheMappedSource bool

@description('Echo of the check (a module needs an output to be referenced).')
output ok bool = topicSourceMustBeTheMappedSource
