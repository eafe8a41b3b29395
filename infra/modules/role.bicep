// A custom role whose permissions come from infra/role-actions.json, the file
// scripts/role_actions.py generates from the actions the adapters declare with @requires(...)
// (shared.azure.permissions.required_actions()). tests/test_infra.py fails when the file and
// the code disagree, so a new Azure call cannot ship without its permission and no stale grant
// lingers. `grant` picks the section: managedScopes (assigned at every managed scope) or
// registration (assigned at every managed subscription, plus `<ns>/register/action` per
// configured namespace, passed as extraActions).
//
// This file creates the role at subscription scope; role-resource-group.bicep is the same role
// at resource group scope. main.bicep deploys the one matching the role's home scope (the first
// assignable scope), so the definition is always PUT at one of its own assignable scopes.
targetScope = 'subscription'

@description('GUID (name) of the role definition; main.bicep derives it from the deployment subscription, the environment, the grant and the home scope, never from the order of the scopes.')
param roleGuid string

@description('Display name of the role (unique in the tenant).')
param roleName string

@description('Section of role-actions.json this role grants.')
@allowed([
  'managedScopes'
  'registration'
])
param grant string

@description('Actions added to the section\'s actions (the per-namespace register actions of the registration role).')
param extraActions array = []

@description('Scopes the role may be assigned at: subscription ids (/subscriptions/<id>) and resource group ids (/subscriptions/<id>/resourceGroups/<name>). This deployment\'s scope is one of them.')
@minLength(1)
param assignableScopes array

var grants = loadJsonContent('../role-actions.json')
var roleActions = concat(grants[grant].actions, extraActions)
var roleDataActions = grants[grant].dataActions

resource role 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: roleGuid
  properties: {
    roleName: roleName
    description: 'Azure Update Remediator (${grant}): generated from the actions the code declares (infra/role-actions.json).'
    type: 'CustomRole'
    permissions: [
      {
        actions: roleActions
        notActions: []
        dataActions: roleDataActions
        notDataActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

@description('Resource id of the role definition.')
output id string = role.id

@description('GUID name of the role definition (role assignments rebuild the id in their own subscription).')
output roleDefinitionName string = role.name
