// Azure Update Remediator: everything `azd up` provisions.
//
//   resource group (app)   identity, storage, Log Analytics + Application Insights, Key Vault,
//                          Flex Consumption plan + Function App, action group, log search alerts
//   managed scopes         the custom role (exact actions of shared/azure/permissions.py),
//                          assigned to the app identity at each subscription / resource group
//   image resource groups  Event Grid system topic + subscription -> on_event, activity log alert
//   maintenance configs    Event Grid system topic + subscription -> on_event
//
// Subscription scope, because the role definition and its assignments reach subscriptions
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

@description('Object id of the person or group running the deployment (azd sets AZURE_PRINCIPAL_ID). Granted Key Vault Secrets Officer to set and rotate the two secrets. Empty: none.')
param principalId string = ''

@description('Principal type of principalId.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param principalType string = 'User'

@description('Tags added to every resource (azd-env-name is always added).')
param tags object = {}

// ---------------------------------------------------------------- what the remediator manages

@minLength(1)
@description('Scopes the remediator may read and change: subscription ids (/subscriptions/<id>) and resource group ids (/subscriptions/<id>/resourceGroups/<name>). The custom role is assignable at, and assigned to the app identity at, each of them; the app refuses targets outside them (REMEDIATOR_ALLOWED_SCOPES).')
param managedScopes array

@description('Resource group ids holding Image Builder templates. Each gets an Event Grid system topic (Microsoft.Resources.ResourceGroups) feeding on_event and an activity log alert for failed template runs.')
param imageResourceGroupIds array = []

@description('Maintenance configuration ids (Azure Update Manager schedules). Each gets an Event Grid system topic (Microsoft.Maintenance.MaintenanceConfigurations) whose PostMaintenanceEvent feeds on_event.')
param maintenanceConfigurationIds array = []

@description('Resource id of the Log Analytics workspace linked to the Automation account (Update Management). Enables the failed-run log search alert and the app\'s log enrichment (REMEDIATOR_WORKSPACE_ID). Empty: neither.')
param automationWorkspaceId string = ''

@description('Resource id of a Log Analytics workspace that already receives the managed subscriptions\' Activity Log. Empty: the app\'s own workspace (route the Activity Log there, e.g. with routeActivityLog).')
param activityLogWorkspaceId string = ''

@description('Create a diagnostic setting on every managed subscription that sends its Administrative Activity Log to the app\'s workspace (for the Update Manager alert). Off by default: a subscription allows only five diagnostic settings.')
param routeActivityLog bool = false

@description('Create the Event Grid subscriptions. Event Grid checks that the on_event function exists, so the first provision runs before the code is deployed with false; the postdeploy hook in azure.yaml then provisions again with true.')
param deployEventSubscriptions bool = false

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

@description('REMEDIATOR_APPROVERS: UPNs or Entra object ids allowed to approve suggested fixes.')
param approvers array = []

@secure()
@description('Teams incoming-webhook URL, stored in Key Vault (REMEDIATOR_TEAMS_WEBHOOK_URL is a Key Vault reference). Empty: not written; set the secret later.')
param teamsWebhookUrl string = ''

@secure()
@description('Key that signs approval links (base64, at least 16 bytes), stored in Key Vault (REMEDIATOR_SIGNING_KEY is a Key Vault reference). Empty: not written; with azd the postprovision hook creates it once in the vault.')
param approvalSigningKey string = ''

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
  'Microsoft.Maintenance.PostMaintenanceEvent'
]

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
    name: '${abbrs.keyVaultVaults}${resourceToken}'
    location: location
    tags: allTags
    identityPrincipalId: identity.outputs.principalId
    operatorPrincipalId: principalId
    operatorPrincipalType: principalType
    teamsWebhookUrl: teamsWebhookUrl
    signingKey: approvalSigningKey
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
    remediatorSettings: {
      REMEDIATOR_MODE: remediatorMode
      REMEDIATOR_SWEEP_SCHEDULE: sweepSchedule
      REMEDIATOR_ALLOWED_SCOPES: join(managedScopes, ',')
      REMEDIATOR_MAX_CHANGES_PER_HOUR: string(maxChangesPerHour)
      REMEDIATOR_MAX_CHANGES_PER_TARGET_PER_DAY: string(maxChangesPerTargetPerDay)
      REMEDIATOR_APPROVERS: join(approvers, ',')
      REMEDIATOR_WORKSPACE_ID: empty(automationWorkspaceId) ? '' : automationLogs.properties.customerId
    }
  }
}

// ---------------------------------------------------------------- alerts

var activityLogWorkspace = !empty(activityLogWorkspaceId) ? activityLogWorkspaceId : monitoring.outputs.workspaceId
var routeActivityLogToApp = routeActivityLog && empty(activityLogWorkspaceId)

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: allTags
    actionGroupName: '${abbrs.insightsActionGroups}remediator-${resourceToken}'
    functionAppId: functionApp.outputs.id
    functionAppHostName: functionApp.outputs.defaultHostName
    automationWorkspaceId: automationWorkspaceId
    activityLogWorkspaceId: activityLogWorkspace
  }
}

module activityLogRouting 'modules/activity-log-routing.bicep' = [for (subscriptionId, i) in managedSubscriptionIds: if(routeActivityLogToApp) {
  name: 'remediator-activitylog-${i}-${resourceToken}'
  scope: subscription(subscriptionId)
  params: {
    workspaceId: monitoring.outputs.workspaceId
  }
}]

module imageRunAlerts 'modules/image-run-alert.bicep' = [for (rgId, i) in imageResourceGroupIds: {
  name: 'remediator-imgalert-${i}-${resourceToken}'
  scope: resourceGroup(split(rgId, '/')[2], split(rgId, '/')[4])
  params: {
    tags: allTags
    actionGroupId: alerts.outputs.actionGroupId
  }
}]

// ---------------------------------------------------------------- least privilege

// Created in the subscription of the first managed scope, as `az role definition create`
// does: the definition then sits under one of its own assignable scopes.
module remediatorRole 'modules/role.bicep' = {
  name: 'remediator-role-${resourceToken}'
  scope: subscription(managedScopeTargets[0].subscriptionId)
  params: {
    roleName: 'Azure Update Remediator (${environmentName}-${resourceToken})'
    assignableScopes: managedScopes
  }
}

module subscriptionRoleAssignments 'modules/role-assignment-subscription.bicep' = [for (target, i) in managedScopeTargets: if(!target.isResourceGroup) {
  name: 'remediator-role-sub-${i}-${resourceToken}'
  scope: subscription(target.subscriptionId)
  params: {
    roleDefinitionName: remediatorRole.outputs.roleDefinitionName
    principalId: identity.outputs.principalId
    principalType: 'ServicePrincipal'
  }
}]

module resourceGroupRoleAssignments 'modules/role-assignment-resource-group.bicep' = [for (target, i) in managedScopeTargets: if(target.isResourceGroup) {
  name: 'remediator-role-rg-${i}-${resourceToken}'
  scope: resourceGroup(target.groupSubscriptionId, target.groupName)
  params: {
    roleDefinitionName: remediatorRole.outputs.roleDefinitionName
    principalId: identity.outputs.principalId
    principalType: 'ServicePrincipal'
  }
}]

// ---------------------------------------------------------------- Event Grid

module imageTopics 'modules/eventgrid-topic.bicep' = [for (rgId, i) in imageResourceGroupIds: {
  name: 'remediator-evgt-img-${i}-${resourceToken}'
  scope: resourceGroup(split(rgId, '/')[2], split(rgId, '/')[4])
  params: {
    name: '${abbrs.eventGridSystemTopics}remediator-${uniqueString(rgId)}'
    location: 'global'
    topicType: 'Microsoft.Resources.ResourceGroups'
    sourceId: rgId
    tags: allTags
  }
}]

module imageDeadLetterAccess 'modules/eventgrid-deadletter-access.bicep' = [for (rgId, i) in imageResourceGroupIds: {
  name: 'remediator-evdl-img-${i}-${resourceToken}'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    containerName: storage.outputs.deadLetterContainerName
    topicPrincipalId: imageTopics[i].outputs.principalId
  }
}]

module imageSubscriptions 'modules/eventgrid-subscription.bicep' = [for (rgId, i) in imageResourceGroupIds: if(deployEventSubscriptions) {
  name: 'remediator-evgs-img-${i}-${resourceToken}'
  scope: resourceGroup(split(rgId, '/')[2], split(rgId, '/')[4])
  params: {
    systemTopicName: imageTopics[i].outputs.name
    name: 'remediator-image-templates'
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

module maintenanceTopics 'modules/eventgrid-topic.bicep' = [for (mcId, i) in maintenanceConfigurationIds: {
  name: 'remediator-evgt-mc-${i}-${resourceToken}'
  scope: resourceGroup(split(mcId, '/')[2], split(mcId, '/')[4])
  params: {
    name: '${abbrs.eventGridSystemTopics}remediator-${uniqueString(mcId)}'
    location: maintenanceConfigurations[i].location
    topicType: 'Microsoft.Maintenance.MaintenanceConfigurations'
    sourceId: mcId
    tags: allTags
  }
}]

module maintenanceDeadLetterAccess 'modules/eventgrid-deadletter-access.bicep' = [for (mcId, i) in maintenanceConfigurationIds: {
  name: 'remediator-evdl-mc-${i}-${resourceToken}'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    containerName: storage.outputs.deadLetterContainerName
    topicPrincipalId: maintenanceTopics[i].outputs.principalId
  }
}]

module maintenanceSubscriptions 'modules/eventgrid-subscription.bicep' = [for (mcId, i) in maintenanceConfigurationIds: if(deployEventSubscriptions) {
  name: 'remediator-evgs-mc-${i}-${resourceToken}'
  scope: resourceGroup(split(mcId, '/')[2], split(mcId, '/')[4])
  params: {
    systemTopicName: maintenanceTopics[i].outputs.name
    name: 'remediator-maintenance'
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

@description('Region of the app resources.')
output AZURE_LOCATION string = location

@description('Tenant of the deployment.')
output AZURE_TENANT_ID string = tenant().tenantId

@description('Resource group of the app resources.')
output AZURE_RESOURCE_GROUP string = rg.name

@description('Function App name (azd deploys service api to it).')
output SERVICE_API_NAME string = functionApp.outputs.name

@description('Base URL of the app (REMEDIATOR_PUBLIC_URL).')
output SERVICE_API_URI string = 'https://${functionApp.outputs.defaultHostName}'

@description('Key Vault name; the postprovision hook in azure.yaml creates the signing key there.')
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name

@description('Client id of the app identity (the app\'s AZURE_CLIENT_ID).')
output REMEDIATOR_IDENTITY_CLIENT_ID string = identity.outputs.clientId

@description('Object id of the app identity (holder of the custom role).')
output REMEDIATOR_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId

@description('Resource id of the custom role definition.')
output REMEDIATOR_ROLE_DEFINITION_ID string = remediatorRole.outputs.id

@description('Resource id of the action group that calls /api/alerts.')
output REMEDIATOR_ACTION_GROUP_ID string = alerts.outputs.actionGroupId
