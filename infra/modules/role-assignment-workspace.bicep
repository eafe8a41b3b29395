// Assigns a role on one Log Analytics workspace (deployed into the workspace's resource group):
// the built-in Log Analytics Reader on the Automation workspace, so the app's queries can read
// every table of that workspace and nothing outside it.
targetScope = 'resourceGroup'

@description('Name of the existing Log Analytics workspace in this resource group.')
param workspaceName string

@description('GUID of the role definition to assign (a built-in role).')
param roleDefinitionName string

@description('Object id of the principal receiving the role.')
param principalId string

@description('Description recorded on the assignment; the azd hooks recognise the remediator\'s assignments by its prefix.')
param assignmentDescription string

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, principalId, roleDefinitionName)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionName)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: assignmentDescription
  }
}

@description('Resource id of the role assignment.')
output id string = assignment.id
