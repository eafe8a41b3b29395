// Routes one subscription's Activity Log (category Administrative) to a Log Analytics
// workspace, so the Update Manager log search alert (table AzureActivity) sees its patch
// operations. Opt-in (routeActivityLog): a subscription has at most five diagnostic
// settings and may already export its Activity Log elsewhere.
targetScope = 'subscription'

@description('Resource id of the Log Analytics workspace that receives the Activity Log.')
param workspaceId string

@description('azd environment name: diagnostic settings are per subscription, so the name carries it and two environments do not overwrite each other.')
param environmentName string

resource activityLog 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'remediator-${environmentName}-activity-log'
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        category: 'Administrative'
        enabled: true
      }
    ]
  }
}

@description('Resource id of the diagnostic setting.')
output id string = activityLog.id
