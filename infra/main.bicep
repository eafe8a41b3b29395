// Azure Update Remediator: everything `azd up` provisions, in two phases.
//
//   resource group (app)   identity, storage, Log Analytics + Application Insights, Key Vault,
//                          Flex Consumption plan + Function App (+ App Service authentication),
//                          action group and log search alerts (second phase)
//   managed scopes         custom role (infra/role-actions.json, generated from the code),
//                          assigned to the app identity at each subscription / resource group
//                          (second phase); provider registration role at each managed subscription
//   other grants           Log Analytics Reader on the Automation workspace, Managed Identity
//                          Operator on each Image Builder identity, Storage Blob Data Reader with an
//                          ABAC condition (container packerlogs) on each staging resource group
//   image resource groups  Event Grid system topic, or the existing one named in existingSystemTopics
//                          (+ subscription -> on_event and activity log alert in the second phase)
//   maintenance configs    Event Grid system topic, or the existing one named in existingSystemTopics
//                          (+ subscription -> on_event, second phase)
//
// First phase (secondPhase=false, `azd provision`): everything that exists before the code,
// including the custom role definitions. Second phase (secondPhase=true, run by the azd
// postdeploy hook once the code is deployed): Event Grid subscriptions (Event Grid checks that
// on_event exists), the action group (it needs the alerts function's key from the running host)
// and the custom role assignments (minutes after their definitions, which replicate eventually).
//
// Subscription scope, because the role definitions and the assignments reach subscriptions
// and resource groups other than the app's own.
targetScope = 'subscription'

// ---------------------------------------------------------------- deployment (azd)

@minLength(1)
@maxLength(64)
@description('azd environment name; seeds every generated resource name and the default resource group name.')
param environmentName string

@minLength(1)
@description('Region of the app resources. Must offer Flex Consumption (az functionapp list-flexconsumption-locations).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Name of the resource group for the app resources. Empty: rg-<environmentName>.')
param resourceGroupName string = ''

@description('Object id of the person, group or pipeline running the deployment (azd sets AZURE_PRINCIPAL_ID). Granted Key Vault Secrets Officer to set and rotate the two secrets. Empty: none.')
param principalId string = ''

@description('Principal type of principalId (the azd preprovision hook sets AZURE_PRINCIPAL_TYPE from the signed-in token: User, or ServicePrincipal in CI). Empty: not sent, ARM looks the principal up.')
@allowed([
  ''
  'User'
  'Group'
  'ServicePrincipal'
])
param principalType string = ''

@description('Tags added to every resource (azd-env-name is always added).')
param tags object = {}

// ---------------------------------------------------------------- what the remediator manages

@minLength(1)
@description('Scopes the remediator may read and change: subscription ids (/subscriptions/<id>) and resource group ids (/subscriptions/<id>/resourceGroups/<name>). The custom role is assignable at, and assigned to the app identity at, each of them; the app refuses targets outside them (REMEDIATOR_ALLOWED_SCOPES).')
param managedScopes array

@description('Where the managed-scopes role definition is created: one of managedScopes. Empty: the first entry. The azd preprovision hook pins it (REMEDIATOR_ROLE_DEFINITION_SCOPE) so reordering managedScopes never moves or renames the role.')
param roleDefinitionScope string = ''

@description('Resource providers the app may register (REMEDIATOR_REGISTER_NAMESPACES): the registration role grants <namespace>/register/action for each at every managed subscription (registration is always subscription-wide). Empty: no registration role.')
param registerNamespaces array = [
  'Microsoft.Automation'
  'Microsoft.Compute'
  'Microsoft.Maintenance'
  'Microsoft.HybridCompute'
  'Microsoft.GuestConfiguration'
]

@description('Where the registration role definition is created: /subscriptions/<id> of one of managedScopes. Empty: the first managed subscription. Pinned by the azd preprovision hook (REMEDIATOR_REGISTRATION_ROLE_SCOPE).')
param registrationRoleScope string = ''

@description('Resource ids of the user-assigned identities Image Builder templates run as. The app identity gets Managed Identity Operator on each (and only these), so it can attach exactly them to a template it recreates.')
param imageBuilderIdentityIds array = []

@description('Resource group ids of Image Builder staging groups (IT_<group>_<template>_..., or a template\'s stagingResourceGroup) whose packerlogs/<run>/customization.log the app reads: Storage Blob Data Reader with an ABAC condition on the packerlogs container. Empty: build logs are not read.')
param imageStagingResourceGroupIds array = []

@description('Resource group ids holding Image Builder templates. Each gets an Event Grid system topic (Microsoft.Resources.ResourceGroups) feeding on_event and an activity log alert for failed template runs.')
param imageResourceGroupIds array = []

@description('Maintenance configuration ids (Azure Update Manager schedules). Each gets an Event Grid system topic (Microsoft.Maintenance.MaintenanceConfigurations), or reuses the one existingSystemTopics names, whose PreMaintenanceEvent and PostMaintenanceEvent feed on_event.')
param maintenanceConfigurationIds array = []

// Event Grid allows only one system topic per source ("Only one Azure Event Grid system topic is
// allowed per source", https://learn.microsoft.com/azure/event-grid/system-topics), so a source
// that already has one (a maintenance configuration with Update Manager pre/post events, whose
// setup creates a Microsoft.Maintenance.MaintenanceConfigurations topic:
// https://learn.microsoft.com/azure/update-manager/pre-post-events-schedule-maintenance-configuration;
// a resource group another tool subscribes to) would fail the deployment with "Only one system
// topic is allowed per source". For those, the event subscription is added to the existing topic.
// Its system-assigned identity writes the dead letters, so it must have one (Update Manager
// creates the topic without an identity; enabling one on an existing topic:
// https://learn.microsoft.com/azure/event-grid/enable-identity-system-topics). The deployment
// never creates, changes or deletes an existing topic.
@description('System topics that already exist, by source: {"<id from imageResourceGroupIds or maintenanceConfigurationIds, spelled the same>": "<resource id of its Microsoft.EventGrid/systemTopics>"}. The source gets its event subscription on that topic instead of a new topic. Each topic must have a system-assigned identity (dead-lettering) and have that source. Empty: a topic is created for every source.')
param existingSystemTopics object = {}

@description('Resource id of the Log Analytics workspace linked to the Automation account (Update Management). Enables the failed-run log search alert, the app\'s log enrichment (REMEDIATOR_WORKSPACE_ID) and Log Analytics Reader on that workspace for the app. Empty: none of them.')
param automationWorkspaceId string = ''

@description('Create the Automation failed-run log search alert (table UpdateRunProgress) when automationWorkspaceId is set. The rule skips query validation, so it deploys even where the table is gone.')
param automationRunAlert bool = true

@description('Resource id of a Log Analytics workspace that already receives the managed subscriptions\' Activity Log. Empty: the app\'s own workspace (route the Activity Log there, e.g. with routeActivityLog).')
param activityLogWorkspaceId string = ''

@description('Create a diagnostic setting on every managed subscription that sends its Administrative Activity Log to the app\'s workspace (for the Update Manager alert). Off by default: a subscription allows only five diagnostic settings.')
param routeActivityLog bool = false

@description('Deploy the second phase: Event Grid subscriptions (Event Grid checks that on_event exists), the action group with the alerts function key (the host hands out keys only once the code runs) and the custom role assignments (after their definitions have replicated). The azd postdeploy hook provisions again with REMEDIATOR_SECOND_PHASE=true in its own process environment, never in .azure/<env>/.env.')
param secondPhase bool = false

// ---------------------------------------------------------------- app settings

@description('REMEDIATOR_MODE: observe (diagnose only), suggest (post fixes for approval) or auto (apply allowed fixes).')
@allowed([
  'observe'
  'suggest'
  'auto'
])
param remediatorMode string = 'suggest'

@description('REMEDIATOR_SWEEP_SCHEDULE: NCRONTAB (six fields, with seconds) of the timer that sweeps for failures events missed.')
param sweepSchedule string = '0 */15 * * * *'

@description('REMEDIATOR_MAX_CHANGES_PER_HOUR: changes the app may make in any hour, across all targets.')
@minValue(0)
param maxChangesPerHour int = 20

@description('REMEDIATOR_MAX_CHANGES_PER_TARGET_PER_DAY: changes the app may make to one target (schedule, template) per day.')
@minValue(0)
param maxChangesPerTargetPerDay int = 3

@description('REMEDIATOR_APPROVERS: comma-separated UPNs or Entra object ids allowed to approve suggested fixes. Needs approverAuthClientId: the deployment fails when only this is set.')
param approvers string = ''

@description('Client id of the Entra app registration that App Service authentication (Easy Auth) signs approvers in with (infra/README.md, Approvers). With approvers set, authsettingsV2 is deployed and REMEDIATOR_APPROVERS is set; empty: neither.')
param approverAuthClientId string = ''

@description('Suffix mixed into the Key Vault name. The azd preprovision hook generates one per environment lifecycle (REMEDIATOR_KEY_VAULT_SUFFIX) and the postdown hook drops it, so a purge-protected vault left soft-deleted by azd down never blocks the next azd up.')
param keyVaultNameSuffix string = ''

// ---------------------------------------------------------------- sizing

@description('Replication of the app storage account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param storageSku string = 'Standard_LRS'

@description('Memory per Flex Consumption instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Most instances the app may scale out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Days the app\'s Log Analytics workspace keeps data.')
@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30

@description('Event Grid delivery attempts before an event is dead-lettered.')
@minValue(1)
@maxValue(30)
param eventMaxDeliveryAttempts int = 30

@description('Minutes Event Grid keeps retrying an event before dead-lettering it.')
@minValue(1)
@maxValue(1440)
param eventTimeToLiveInMinutes int = 1440

// ---------------------------------------------------------------- names

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var allTags = union(tags, {
  'azd-env-name': environmentName
})
var appResourceGroupName = !empty(resourceGroupName) ? resourceGroupName : '${abbrs.resourcesResourceGroups}${environmentName}'
var functionAppName = '${abbrs.webSitesFunctions}remediator-${resourceToken}'
var deploymentContainerName = 'app-package-${take(resourceToken, 7)}'
var deadLetterContainerName = 'eventgrid-deadletter'
var keyVaultName = '${abbrs.keyVaultVaults}${toLower(uniqueString(subscription().id, environmentName, location, keyVaultNameSuffix))}'

// Names of resources in shared (target) resource groups and subscriptions carry the
// environment, so two environments can manage the same estate side by side: letters, digits
// and '-' only (Event Grid subscription names), at most 26 characters, unique per environment.
var environmentSlug = toLower(replace(replace(replace(replace(environmentName, '_', '-'), '.', '-'), '(', '-'), ')', '-'))
var environmentTag = '${take(environmentSlug, 20)}-${take(uniqueString(environmentName), 5)}'

// Scope ids split on '/': ['', 'subscriptions', <id>, 'resourceGroups', <name>]. Each entry
// drives either the subscription or the resource-group role assignment module; the other
// module's entry is skipped, and its scope points at the app's own group so that it stays
// a valid (unused) expression. (No lambdas: checkov's Bicep parser does not read them.)
var managedScopeTargets = [for scopeId in managedScopes: {
  id: scopeId
  isResourceGroup: contains(toLower(scopeId), '/resourcegroups/')
  subscriptionId: split(scopeId, '/')[2]
  groupSubscriptionId: contains(toLower(scopeId), '/resourcegroups/') ? split(scopeId, '/')[2] : subscription().subscriptionId
  groupName: contains(toLower(scopeId), '/resourcegroups/') ? split(scopeId, '/')[4] : appResourceGroupName
}]
var managedSubscriptionIdList = [for scopeId in managedScopes: split(scopeId, '/')[2]]
var managedSubscriptionIds = union(managedSubscriptionIdList, [])
var managedSubscriptionScopes = [for subscriptionId in managedSubscriptionIds: '/subscriptions/${subscriptionId}']
var managedScopesLower = [for scopeId in managedScopes: toLower(scopeId)]
var managedSubscriptionScopesLower = [for scopeId in managedSubscriptionScopes: toLower(scopeId)]

// Event Grid filters: Image Builder's own operations on image templates, and the end of
// every Update Manager maintenance run.
var imageEventTypes = [
  'Microsoft.Resources.ResourceActionFailure'
  'Microsoft.Resources.ResourceActionSuccess'
  'Microsoft.Resources.ResourceWriteFailure'
]
var imageAdvancedFilters = [
  {
    operatorType: 'StringBeginsWith'
    key: 'data.operationName'
    values: [
      'Microsoft.VirtualMachineImages'
    ]
  }
]
var maintenanceEventTypes = [
  'Microsoft.Maintenance.PreMaintenanceEvent'
  'Microsoft.Maintenance.PostMaintenanceEvent'
]

// Where each source's event subscription goes: the deployment's own topic (named after the
// source, in the source's resource group) or the existing topic existingSystemTopics maps it to
// (in whatever resource group that topic is: subscriptionId and resourceGroup are the topic's).
// Keys must be spelled as in the source lists (the guard checks it), so the lookup below never
// misses a key contains() found.
var imageExistingTopicIds = [for rgId in imageResourceGroupIds: contains(existingSystemTopics, rgId) ? existingSystemTopics[rgId] : '']
var imageTopicTargets = [for (rgId, i) in imageResourceGroupIds: {
  reuse: !empty(imageExistingTopicIds[i])
  subscriptionId: split(empty(imageExistingTopicIds[i]) ? rgId : imageExistingTopicIds[i], '/')[2]
  resourceGroup: split(empty(imageExistingTopicIds[i]) ? rgId : imageExistingTopicIds[i], '/')[4]
  existingName: empty(imageExistingTopicIds[i]) ? '' : last(split(imageExistingTopicIds[i], '/'))
}]
var maintenanceExistingTopicIds = [for mcId in maintenanceConfigurationIds: contains(existingSystemTopics, mcId) ? existingSystemTopics[mcId] : '']
var maintenanceTopicTargets = [for (mcId, i) in maintenanceConfigurationIds: {
  reuse: !empty(maintenanceExistingTopicIds[i])
  subscriptionId: split(empty(maintenanceExistingTopicIds[i]) ? mcId : maintenanceExistingTopicIds[i], '/')[2]
  resourceGroup: split(empty(maintenanceExistingTopicIds[i]) ? mcId : maintenanceExistingTopicIds[i], '/')[4]
  existingName: empty(maintenanceExistingTopicIds[i]) ? '' : last(split(maintenanceExistingTopicIds[i], '/'))
}]
var topicSources = union(imageResourceGroupIds, maintenanceConfigurationIds)
var existingTopicKeysListed = [for entry in items(existingSystemTopics): contains(topicSources, entry.key)]
var existingTopicValuesAreSystemTopics = [for entry in items(existingSystemTopics): contains(toLower(string(entry.value)), '/providers/microsoft.eventgrid/systemtopics/')]

// Image Builder identities and staging groups, split like the scopes above.
var imageBuilderIdentityTargets = [for identityId in imageBuilderIdentityIds: {
  subscriptionId: split(identityId, '/')[2]
  resourceGroup: split(identityId, '/')[4]
  name: last(split(identityId, '/'))
}]
var stagingGroupTargets = [for groupId in imageStagingResourceGroupIds: {
  subscriptionId: split(groupId, '/')[2]
  name: split(groupId, '/')[4]
}]

// The Automation workspace, when given, for its customer id (REMEDIATOR_WORKSPACE_ID).
var automationWorkspace = empty(automationWorkspaceId) ? {
  subscriptionId: subscription().subscriptionId
  resourceGroup: appResourceGroupName
  name: 'none'
} : {
  subscriptionId: split(automationWorkspaceId, '/')[2]
  resourceGroup: split(automationWorkspaceId, '/')[4]
  name: last(split(automationWorkspaceId, '/'))
}

// ---------------------------------------------------------------- checks

// Combinations that must never deploy (guard.bicep explains the mechanism; the azd
// preprovision hook makes the same checks first, with a longer message).
var approverAuthEnabled = !(empty(approvers) || empty(approverAuthClientId))
var managedRoleHome = empty(roleDefinitionScope) ? managedScopes[0] : roleDefinitionScope
var registrationRoleHome = empty(registrationRoleScope) ? managedSubscriptionScopes[0] : registrationRoleScope

module guard 'modules/guard.bicep' = {
  name: 'remediator-guard-${resourceToken}'
  params: {
    approversRequireApproverAuthClientId: empty(approvers) || !empty(approverAuthClientId)
    roleDefinitionScopeMustBeAManagedScope: contains(managedScopesLower, toLower(managedRoleHome))
    registrationRoleScopeMustBeAManagedSubscription: contains(managedSubscriptionScopesLower, toLower(registrationRoleHome))
    existingSystemTopicsMustMapListedSources: !contains(existingTopicKeysListed, false)
    existingSystemTopicsMustBeSystemTopicIds: !contains(existingTopicValuesAreSystemTopics, false)
  }
}

// ---------------------------------------------------------------- app resource group

resource rg 'Microsoft.Resources/resourceGroups@2022-09-01' = {
  name: appResourceGroupName
  location: location
  tags: allTags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}remediator-${resourceToken}'
    location: location
    tags: allTags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: allTags
    retentionInDays: logRetentionInDays
    identityPrincipalId: identity.outputs.principalId
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: allTags
    skuName: storageSku
    deploymentContainerName: deploymentContainerName
    deadLetterContainerName: deadLetterContainerName
    identityPrincipalId: identity.outputs.principalId
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: keyVaultName
    location: location
    tags: allTags
    identityPrincipalId: identity.outputs.principalId
    operatorPrincipalId: principalId
    operatorPrincipalType: principalType
  }
}

resource automationLogs 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = if (!empty(automationWorkspaceId)) {
  name: automationWorkspace.name
  scope: resourceGroup(automationWorkspace.subscriptionId, automationWorkspace.resourceGroup)
}

module functionApp 'modules/function.bicep' = {
  name: 'function'
  scope: rg
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: allTags
    serviceName: 'api'
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    storageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: storage.outputs.deploymentContainerName
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    teamsWebhookSecretUri: keyVault.outputs.teamsWebhookSecretUri
    signingKeySecretUri: keyVault.outputs.signingKeySecretUri
    pythonVersion: '3.11'
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    approverAuthClientId: approverAuthEnabled ? approverAuthClientId : ''
    remediatorSettings: {
      REMEDIATOR_MODE: remediatorMode
      REMEDIATOR_SWEEP_SCHEDULE: sweepSchedule
      REMEDIATOR_ALLOWED_SCOPES: join(managedScopes, ',')
      REMEDIATOR_MAX_CHANGES_PER_HOUR: string(maxChangesPerHour)
      REMEDIATOR_MAX_CHANGES_PER_TARGET_PER_DAY: string(maxChangesPerTargetPerDay)
      // Never without App Service authentication: the allow-list is checked against the
      // platform-injected X-MS-CLIENT-PRINCIPAL, which only Easy Auth makes unforgeable.
      REMEDIATOR_APPROVERS: approverAuthEnabled ? approvers : ''
      REMEDIATOR_REGISTER_NAMESPACES: join(registerNamespaces, ',')
      REMEDIATOR_WORKSPACE_ID: empty(automationWorkspaceId) ? '' : automationLogs.properties.customerId
    }
  }
  dependsOn: [
    guard
  ]
}

// ---------------------------------------------------------------- alerts (second phase)

var activityLogWorkspace = !empty(activityLogWorkspaceId) ? activityLogWorkspaceId : monitoring.outputs.workspaceId
var routeActivityLogToApp = routeActivityLog && empty(activityLogWorkspaceId)

module alerts 'modules/alerts.bicep' = if (secondPhase) {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: allTags
    actionGroupName: '${abbrs.insightsActionGroups}remediator-${resourceToken}'
    functionAppId: functionApp.outputs.id
    functionAppHostName: functionApp.outputs.defaultHostName
    automationWorkspaceId: automationWorkspaceId
    automationRunAlert: automationRunAlert
    activityLogWorkspaceId: activityLogWorkspace
  }
}

module activityLogRouting 'modules/activity-log-routing.bicep' = [for (subscriptionId, i) in managedSubscriptionIds: if(routeActivityLogToApp) {
  name: 'remediator-activitylog-${i}-${resourceToken}'
  scope: subscription(subscriptionId)
  params: {
    workspaceId: monitoring.outputs.workspaceId
    environmentName: environmentTag
  }
}]

module imageRunAlerts 'modules/image-run-alert.bicep' = [for (rgId, i) in imageResourceGroupIds: if(secondPhase) {
  name: 'remediator-imgalert-${i}-${resourceToken}'
  scope: resourceGroup(split(rgId, '/')[2], split(rgId, '/')[4])
  params: {
    tags: allTags
    actionGroupId: secondPhase ? alerts.outputs.actionGroupId : ''
    environmentName: environmentTag
  }
}]

// ---------------------------------------------------------------- least privilege

// Role GUIDs come from the deployment subscription, the environment, the grant and the home
// scope (pinned by the azd preprovision hook), never from the order of managedScopes; the
// display name carries the environment and the GUID's start, so it is unique in the tenant.
var managedRoleHomeIsGroup = contains(toLower(managedRoleHome), '/resourcegroups/')
var managedRoleGuid = guid(subscription().id, environmentName, 'managedScopes', toLower(managedRoleHome))
var managedRoleName = 'Azure Update Remediator (${environmentName}, ${take(managedRoleGuid, 8)})'
var registrationRoleGuid = guid(subscription().id, environmentName, 'registration', toLower(registrationRoleHome))
var registrationRoleName = 'Azure Update Remediator registration (${environmentName}, ${take(registrationRoleGuid, 8)})'
var registerActions = [for namespace in registerNamespaces: '${namespace}/register/action']
var deployRegistrationRole = !empty(registerNamespaces)

// The role definition is PUT at its home, one of its own assignable scopes: a subscription
// home uses role.bicep, a resource group home role-resource-group.bicep (the other module is
// skipped, and its scope points at a valid placeholder).
module managedRoleAtSubscription 'modules/role.bicep' = if (!managedRoleHomeIsGroup) {
  name: 'remediator-role-${resourceToken}'
  scope: subscription(split(managedRoleHome, '/')[2])
  params: {
    roleGuid: managedRoleGuid
    roleName: managedRoleName
    grant: 'managedScopes'
    assignableScopes: managedScopes
  }
  dependsOn: [
    guard
  ]
}

module managedRoleAtResourceGroup 'modules/role-resource-group.bicep' = if (managedRoleHomeIsGroup) {
  name: 'remediator-role-rg-${resourceToken}'
  scope: resourceGroup(split(managedRoleHome, '/')[2], managedRoleHomeIsGroup ? split(managedRoleHome, '/')[4] : appResourceGroupName)
  params: {
    roleGuid: managedRoleGuid
    roleName: managedRoleName
    grant: 'managedScopes'
    assignableScopes: managedScopes
  }
  dependsOn: [
    guard
  ]
}

module registrationRole 'modules/role.bicep' = if (deployRegistrationRole) {
  name: 'remediator-role-registration-${resourceToken}'
  scope: subscription(split(registrationRoleHome, '/')[2])
  params: {
    roleGuid: registrationRoleGuid
    roleName: registrationRoleName
    grant: 'registration'
    extraActions: registerActions
    assignableScopes: managedSubscriptionScopes
  }
  dependsOn: [
    guard
  ]
}

// Custom role assignments: second phase only, ordered after their definitions (dependsOn), and
// minutes after the first phase created them, so the definitions have replicated.
module subscriptionRoleAssignments 'modules/role-assignment-subscription.bicep' = [for (target, i) in managedScopeTargets: if(secondPhase && !target.isResourceGroup) {
  name: 'remediator-role-sub-${i}-${resourceToken}'
  scope: subscription(target.subscriptionId)
  params: {
    roleDefinitionName: managedRoleGuid
    principalId: identity.outputs.principalId
    principalType: 'ServicePrincipal'
    assignmentDescription: 'Azure Update Remediator (${environmentName}): managed scope.'
  }
  dependsOn: [
    managedRoleAtSubscription
    managedRoleAtResourceGroup
  ]
}]

module resourceGroupRoleAssignments 'modules/role-assignment-resource-group.bicep' = [for (target, i) in managedScopeTargets: if(secondPhase && target.isResourceGroup) {
  name: 'remediator-role-rg-${i}-${resourceToken}'
  scope: resourceGroup(target.groupSubscriptionId, target.groupName)
  params: {
    roleDefinitionName: managedRoleGuid
    principalId: identity.outputs.principalId
    principalType: 'ServicePrincipal'
    assignmentDescription: 'Azure Update Remediator (${environmentName}): managed scope.'
  }
  dependsOn: [
    managedRoleAtSubscription
    managedRoleAtResourceGroup
  ]
}]

module registrationRoleAssignments 'modules/role-assignment-subscription.bicep' = [for (subscriptionId, i) in managedSubscriptionIds: if(secondPhase && deployRegistrationRole) {
  name: 'remediator-role-reg-${i}-${resourceToken}'
  scope: subscription(subscriptionId)
  params: {
    roleDefinitionName: registrationRoleGuid
    principalId: identity.outputs.principalId
    principalType: 'ServicePrincipal'
    assignmentDescription: 'Azure Update Remediator (${environmentName}): provider registration.'
  }
  dependsOn: [
    registrationRole
  ]
}]

// Built-in roles on single resources (no custom definition, nothing to replicate).
// Log Analytics Reader on the Automation workspace: workspace read, query and every table.
var logAnalyticsReader = '73c42c96-874c-492b-b04d-ab87d138a893'
// Managed Identity Operator: read and assign that one identity.
var managedIdentityOperator = 'f1a07417-d97a-45cb-824c-7a7467783830'
// Storage Blob Data Reader, limited by the condition to blob reads in containers named
// packerlogs, where Image Builder writes <run>/customization.log.
var storageBlobDataReader = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
var packerLogsCondition = '((!(ActionMatches{\'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read\'})) OR (@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals \'packerlogs\'))'

module workspaceReader 'modules/role-assignment-workspace.bicep' = if (!empty(automationWorkspaceId)) {
  name: 'remediator-role-law-${resourceToken}'
  scope: resourceGroup(automationWorkspace.subscriptionId, automationWorkspace.resourceGroup)
  params: {
    workspaceName: automationWorkspace.name
    roleDefinitionName: logAnalyticsReader
    principalId: identity.outputs.principalId
    assignmentDescription: 'Azure Update Remediator (${environmentName}): Automation workspace queries.'
  }
}

module identityOperators 'modules/role-assignment-identity.bicep' = [for (target, i) in imageBuilderIdentityTargets: {
  name: 'remediator-role-mi-${i}-${resourceToken}'
  scope: resourceGroup(target.subscriptionId, target.resourceGroup)
  params: {
    identityName: target.name
    roleDefinitionName: managedIdentityOperator
    principalId: identity.outputs.principalId
    assignmentDescription: 'Azure Update Remediator (${environmentName}): Image Builder identity.'
  }
}]

module buildLogReaders 'modules/role-assignment-resource-group.bicep' = [for (target, i) in stagingGroupTargets: {
  name: 'remediator-role-logs-${i}-${resourceToken}'
  scope: resourceGroup(target.subscriptionId, target.name)
  params: {
    roleDefinitionName: storageBlobDataReader
    principalId: identity.outputs.principalId
    principalType: 'ServicePrincipal'
    condition: packerLogsCondition
    assignmentDescription: 'Azure Update Remediator (${environmentName}): Image Builder build logs.'
  }
}]

// ---------------------------------------------------------------- Event Grid

// Each source either gets the deployment's own topic (imageTopics / maintenanceTopics) or, when
// existingSystemTopics names one, has it read (imageExistingTopics / maintenanceExistingTopics):
// exactly one of the two modules deploys per source, and everything downstream (dead-letter
// access, event subscription) takes the topic from whichever did.
module imageTopics 'modules/eventgrid-topic.bicep' = [for (rgId, i) in imageResourceGroupIds: if(!imageTopicTargets[i].reuse) {
  name: 'remediator-evgt-img-${i}-${resourceToken}'
  scope: resourceGroup(split(rgId, '/')[2], split(rgId, '/')[4])
  params: {
    // One system topic per source: shared by every environment (its name has no environment),
    // each environment adds its own event subscription.
    name: '${abbrs.eventGridSystemTopics}remediator-${uniqueString(rgId)}'
    location: 'global'
    topicType: 'Microsoft.Resources.ResourceGroups'
    sourceId: rgId
    tags: tags
  }
  // Not before the guard: a misspelled existingSystemTopics key must stop the deployment first.
  dependsOn: [
    guard
  ]
}]

module imageExistingTopics 'modules/eventgrid-existing-topic.bicep' = [for (rgId, i) in imageResourceGroupIds: if(imageTopicTargets[i].reuse) {
  name: 'remediator-evgx-img-${i}-${resourceToken}'
  scope: resourceGroup(imageTopicTargets[i].subscriptionId, imageTopicTargets[i].resourceGroup)
  params: {
    name: imageTopicTargets[i].existingName
    sourceId: rgId
  }
  // Not before the guard: a misspelled existingSystemTopics key must stop the deployment first.
  dependsOn: [
    guard
  ]
}]

module imageDeadLetterAccess 'modules/eventgrid-deadletter-access.bicep' = [for (rgId, i) in imageResourceGroupIds: {
  name: 'remediator-evdl-img-${i}-${resourceToken}'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    containerName: storage.outputs.deadLetterContainerName
    topicPrincipalId: (imageTopicTargets[i].reuse) ? imageExistingTopics[i].outputs.principalId : imageTopics[i].outputs.principalId
  }
}]

module imageSubscriptions 'modules/eventgrid-subscription.bicep' = [for (rgId, i) in imageResourceGroupIds: if(secondPhase) {
  name: 'remediator-evgs-img-${i}-${resourceToken}'
  scope: resourceGroup(imageTopicTargets[i].subscriptionId, imageTopicTargets[i].resourceGroup)
  params: {
    systemTopicName: (imageTopicTargets[i].reuse) ? imageExistingTopics[i].outputs.name : imageTopics[i].outputs.name
    name: 'remediator-${environmentTag}-img'
    functionAppId: functionApp.outputs.id
    functionName: 'on_event'
    includedEventTypes: imageEventTypes
    advancedFilters: imageAdvancedFilters
    deadLetterStorageAccountId: storage.outputs.id
    deadLetterContainerName: storage.outputs.deadLetterContainerName
    maxDeliveryAttempts: eventMaxDeliveryAttempts
    eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
  }
  dependsOn: [
    imageDeadLetterAccess
  ]
}]

resource maintenanceConfigurations 'Microsoft.Maintenance/maintenanceConfigurations@2023-04-01' existing = [for mcId in maintenanceConfigurationIds: {
  name: last(split(mcId, '/'))
  scope: resourceGroup(split(mcId, '/')[2], split(mcId, '/')[4])
}]

module maintenanceTopics 'modules/eventgrid-topic.bicep' = [for (mcId, i) in maintenanceConfigurationIds: if(!maintenanceTopicTargets[i].reuse) {
  name: 'remediator-evgt-mc-${i}-${resourceToken}'
  scope: resourceGroup(split(mcId, '/')[2], split(mcId, '/')[4])
  params: {
    name: '${abbrs.eventGridSystemTopics}remediator-${uniqueString(mcId)}'
    location: maintenanceConfigurations[i].location
    topicType: 'Microsoft.Maintenance.MaintenanceConfigurations'
    sourceId: mcId
    tags: tags
  }
  // Not before the guard: a misspelled existingSystemTopics key must stop the deployment first.
  dependsOn: [
    guard
  ]
}]

module maintenanceExistingTopics 'modules/eventgrid-existing-topic.bicep' = [for (mcId, i) in maintenanceConfigurationIds: if(maintenanceTopicTargets[i].reuse) {
  name: 'remediator-evgx-mc-${i}-${resourceToken}'
  scope: resourceGroup(maintenanceTopicTargets[i].subscriptionId, maintenanceTopicTargets[i].resourceGroup)
  params: {
    name: maintenanceTopicTargets[i].existingName
    sourceId: mcId
  }
  // Not before the guard: a misspelled existingSystemTopics key must stop the deployment first.
  dependsOn: [
    guard
  ]
}]

module maintenanceDeadLetterAccess 'modules/eventgrid-deadletter-access.bicep' = [for (mcId, i) in maintenanceConfigurationIds: {
  name: 'remediator-evdl-mc-${i}-${resourceToken}'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    containerName: storage.outputs.deadLetterContainerName
    topicPrincipalId: (maintenanceTopicTargets[i].reuse) ? maintenanceExistingTopics[i].outputs.principalId : maintenanceTopics[i].outputs.principalId
  }
}]

module maintenanceSubscriptions 'modules/eventgrid-subscription.bicep' = [for (mcId, i) in maintenanceConfigurationIds: if(secondPhase) {
  name: 'remediator-evgs-mc-${i}-${resourceToken}'
  scope: resourceGroup(maintenanceTopicTargets[i].subscriptionId, maintenanceTopicTargets[i].resourceGroup)
  params: {
    systemTopicName: (maintenanceTopicTargets[i].reuse) ? maintenanceExistingTopics[i].outputs.name : maintenanceTopics[i].outputs.name
    name: 'remediator-${environmentTag}-mc'
    functionAppId: functionApp.outputs.id
    functionName: 'on_event'
    includedEventTypes: maintenanceEventTypes
    deadLetterStorageAccountId: storage.outputs.id
    deadLetterContainerName: storage.outputs.deadLetterContainerName
    maxDeliveryAttempts: eventMaxDeliveryAttempts
    eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
  }
  dependsOn: [
    maintenanceDeadLetterAccess
  ]
}]

// ---------------------------------------------------------------- outputs (azd writes them to .azure/<env>/.env)
// No secret and no key is an output: the Teams webhook and the signing key live in Key Vault only.

@description('Region of the app resources.')
output AZURE_LOCATION string = location

@description('Tenant of the deployment.')
output AZURE_TENANT_ID string = tenant().tenantId

@description('Resource group of the app resources.')
output AZURE_RESOURCE_GROUP string = rg.name

@description('Function App name (azd deploys service api to it).')
output SERVICE_API_NAME string = functionApp.outputs.name

@description('Base URL of the app (REMEDIATOR_PUBLIC_URL); the redirect URI of the approvers\' app registration is <this>/.auth/login/aad/callback.')
output SERVICE_API_URI string = 'https://${functionApp.outputs.defaultHostName}'

@description('Key Vault name.')
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name

@description('Key Vault URI; the postprovision hook writes the signing key (and the Teams webhook, when given) there.')
output AZURE_KEY_VAULT_ENDPOINT string = keyVault.outputs.uri

@description('Client id of the app identity (the app\'s AZURE_CLIENT_ID).')
output REMEDIATOR_IDENTITY_CLIENT_ID string = identity.outputs.clientId

@description('Object id of the app identity (holder of the custom roles); the preprovision hook removes its assignments at scopes that were dropped.')
output REMEDIATOR_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId

@description('GUID of the managed-scopes custom role definition.')
output REMEDIATOR_ROLE_DEFINITION_NAME string = managedRoleGuid

@description('Home scope the managed-scopes role definition was created at (the preprovision hook pins REMEDIATOR_ROLE_DEFINITION_SCOPE to it).')
output REMEDIATOR_ROLE_DEFINITION_HOME string = managedRoleHome

@description('GUID of the registration custom role definition (empty when registerNamespaces is empty).')
output REMEDIATOR_REGISTRATION_ROLE_DEFINITION_NAME string = deployRegistrationRole ? registrationRoleGuid : ''

@description('Home subscription scope of the registration role definition.')
output REMEDIATOR_REGISTRATION_ROLE_HOME string = registrationRoleHome
