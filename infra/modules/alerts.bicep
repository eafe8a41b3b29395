// Alerting into the remediator: one action group whose webhook is the app's /api/alerts
// function (common alert schema), and log search alerts for failed update runs. Failed
// image builds are caught by activity log alerts next to each image resource group
// (image-run-alert.bicep), which point at the same action group.
//
// Second phase only (main.bicep deploys this module with secondPhase): the webhook carries the
// alerts function's own key, which the Functions host can only hand out once the code is
// deployed and the host runs ("error from host runtime" before that).

@description('Azure region of the log search alert rules (the action group is global).')
param location string

@description('Tags applied to the alert resources.')
param tags object = {}

@description('Name of the action group.')
param actionGroupName string

@description('Short name of the action group shown in notifications (at most 12 characters).')
@maxLength(12)
param actionGroupShortName string = 'remediator'

@description('Resource id of the Function App whose /api/alerts function receives the alerts.')
param functionAppId string

@description('Default host name of the Function App.')
param functionAppHostName string

@description('Resource id of the Log Analytics workspace linked to the Automation account (Update Management data, table UpdateRunProgress). Empty: no Automation alert rule.')
param automationWorkspaceId string = ''

@description('Create the Automation failed-run rule when automationWorkspaceId is set. Off: no rule (e.g. once Update Management no longer writes UpdateRunProgress there).')
param automationRunAlert bool = true

@description('Resource id of the Log Analytics workspace that receives the Activity Log of the managed subscriptions (table AzureActivity).')
param activityLogWorkspaceId string

@description('How often the log search alerts run and how far back they look (ISO 8601).')
param evaluationFrequency string = 'PT15M'

// The alerts function's own key (POST .../functions/alerts/listkeys), read at deployment time:
// the action group calls the function with it (Azure Monitor webhooks cannot send an Entra
// token to a function-key endpoint). Not the host key, which would also open every other
// function, e.g. POST /api/remediations/{name}.
var alertsFunctionId = '${functionAppId}/functions/alerts'
var alertsUrl = 'https://${functionAppHostName}/api/alerts?code=${listKeys(alertsFunctionId, '2024-04-01').default}'

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: actionGroupShortName
    enabled: true
    webhookReceivers: [
      {
        name: 'remediator-alerts'
        serviceUri: alertsUrl
        useCommonAlertSchema: true
        useAadAuth: false
      }
    ]
  }
}

// Automation Update Management: one row per update per machine per run; a run failed
// when any row failed or carries an error.
var automationFailedRunsQuery = '''
UpdateRunProgress
| where InstallationStatus =~ 'Failed' or isnotempty(ErrorResult)
| summarize FailedUpdates = count(), Errors = make_set(ErrorResult, 5) by Computer, ResourceId, CorrelationId
'''

// Azure Update Manager writes run results to Azure Resource Graph, which log search
// alerts cannot query without arg(""); the Activity Log records the patch operations of
// each maintenance run, so a failed operation is the signal here (see infra/README.md).
var updateManagerFailedRunsQuery = '''
AzureActivity
| where CategoryValue == 'Administrative'
| where OperationNameValue in~ ('Microsoft.Compute/virtualMachines/installPatches/action', 'Microsoft.HybridCompute/machines/installPatches/action', 'Microsoft.Maintenance/applyUpdates/write')
| where ActivityStatusValue in~ ('Failure', 'Failed')
| summarize Failures = count() by _ResourceId, OperationNameValue, CorrelationId
'''

resource automationFailedRuns 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = if (automationRunAlert && !empty(automationWorkspaceId)) {
  name: 'alert-automation-update-run-failed'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Automation Update Management run failed'
    description: 'An Automation Update Management deployment run had a failed update on a machine; the remediator diagnoses it.'
    enabled: true
    severity: 2
    scopes: [
      automationWorkspaceId
    ]
    evaluationFrequency: evaluationFrequency
    windowSize: evaluationFrequency
    autoMitigate: false
    // Azure Monitor validates a rule's query when it is created, and UpdateRunProgress no longer
    // exists in a workspace once Update Management is gone (or before it first wrote there).
    skipQueryValidation: true
    criteria: {
      allOf: [
        {
          query: automationFailedRunsQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

resource updateManagerFailedRuns 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-update-manager-run-failed'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Azure Update Manager patch operation failed'
    description: 'A patch installation or maintenance-configuration run failed in the Activity Log; the remediator diagnoses it.'
    enabled: true
    severity: 2
    scopes: [
      activityLogWorkspaceId
    ]
    evaluationFrequency: evaluationFrequency
    windowSize: evaluationFrequency
    autoMitigate: false
    // AzureActivity appears in a workspace only after the first Activity Log export lands.
    skipQueryValidation: true
    criteria: {
      allOf: [
        {
          query: updateManagerFailedRunsQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

@description('Resource id of the action group (image-run alerts in other resource groups use it too).')
output actionGroupId string = actionGroup.id
