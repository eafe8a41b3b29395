// The remediator's custom role: exactly the actions the adapters declare with
// @requires(...) in shared/azure/*.py (shared.azure.permissions.required_actions()).
// tests/test_infra.py fails when this list and the code disagree in either direction,
// so a new Azure call cannot ship without its permission, and no stale grant lingers.
targetScope = 'subscription'

@description('Display name of the role (unique in the tenant).')
param roleName string

@description('Scopes the role may be assigned at: subscription ids (/subscriptions/<id>) and resource group ids (/subscriptions/<id>/resourceGroups/<name>).')
@minLength(1)
param assignableScopes array

// Control-plane actions, one per line, sorted.
var remediatorActions = [
  'Microsoft.Automation/automationAccounts/read'
  'Microsoft.Automation/automationAccounts/softwareUpdateConfigurationMachineRuns/read'
  'Microsoft.Automation/automationAccounts/softwareUpdateConfigurationRuns/read'
  'Microsoft.Automation/automationAccounts/softwareUpdateConfigurations/read'
  'Microsoft.Automation/automationAccounts/softwareUpdateConfigurations/write'
  'Microsoft.Automation/register/action'
  'Microsoft.Compute/virtualMachines/read'
  'Microsoft.HybridCompute/machines/read'
  'Microsoft.Maintenance/maintenanceConfigurations/read'
  'Microsoft.Maintenance/maintenanceConfigurations/write'
  'Microsoft.ManagedIdentity/userAssignedIdentities/assign/action'
  'Microsoft.OperationalInsights/workspaces/query/read'
  'Microsoft.Resources/subscriptions/providers/read'
  'Microsoft.VirtualMachineImages/imageTemplates/delete'
  'Microsoft.VirtualMachineImages/imageTemplates/read'
  'Microsoft.VirtualMachineImages/imageTemplates/run/action'
  'Microsoft.VirtualMachineImages/imageTemplates/runOutputs/read'
  'Microsoft.VirtualMachineImages/imageTemplates/write'
]

// Data-plane actions: reading Image Builder's packerlogs/<run>/customization.log.
var remediatorDataActions = [
  'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'
]

resource role 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, roleName)
  properties: {
    roleName: roleName
    description: 'Azure Update Remediator: diagnose and fix failed Update Management / Update Manager runs and Image Builder builds. Generated from shared/azure/permissions.py.'
    type: 'CustomRole'
    permissions: [
      {
        actions: remediatorActions
        notActions: []
        dataActions: remediatorDataActions
        notDataActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

@description('Resource id of the role definition (role assignments reference it).')
output id string = role.id

@description('GUID name of the role definition.')
output roleDefinitionName string = role.name
