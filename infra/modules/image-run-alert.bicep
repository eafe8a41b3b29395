// Activity log alert for failed Image Builder runs, deployed into each image resource
// group: activity log alert rules apply to scopes in their own subscription, and image
// groups may sit in other subscriptions than the app.

@description('Tags applied to the alert rule.')
param tags object = {}

@description('Resource id of the action group that forwards the alert to the remediator.')
param actionGroupId string

@description('azd environment name: image resource groups are shared, so the rule name carries it and two environments can each have their own rule.')
param environmentName string

resource imageRunFailed 'Microsoft.Insights/activityLogAlerts@2020-10-01' = {
  name: 'alert-image-template-run-failed-${environmentName}'
  location: 'Global'
  tags: tags
  properties: {
    description: 'An Azure VM Image Builder template run failed in this resource group; the remediator diagnoses it.'
    enabled: true
    scopes: [
      resourceGroup().id
    ]
    condition: {
      allOf: [
        {
          field: 'category'
          equals: 'Administrative'
        }
        {
          field: 'operationName'
          equals: 'Microsoft.VirtualMachineImages/imageTemplates/run/action'
        }
        {
          field: 'status'
          equals: 'Failed'
        }
      ]
    }
    actions: {
      actionGroups: [
        {
          actionGroupId: actionGroupId
        }
      ]
    }
  }
}

@description('Resource id of the alert rule.')
output id string = imageRunFailed.id
