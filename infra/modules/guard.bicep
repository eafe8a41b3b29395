// Deployment-time checks of parameter combinations that must never deploy. Bicep's fail()
// cannot be used here (checkov's Bicep parser does not read it), so each check is a boolean
// parameter whose only allowed value is true: ARM refuses the nested deployment with
// "The provided value ... for the template parameter '<name>' is not valid", and the name says
// what is wrong. The azd preprovision hook (infra/hooks/remediator_hooks.py) runs the same
// checks with a longer message before anything is deployed.
targetScope = 'subscription'

@description('approvers (REMEDIATOR_APPROVERS) needs approverAuthClientId: without App Service authentication the X-MS-CLIENT-PRINCIPAL header the allow-list is checked against could be forged.')
@allowed([
  true
])
param approversRequireApproverAuthClientId bool

@description('roleDefinitionScope must be one of managedScopes: a role definition is created at one of its own assignable scopes.')
@allowed([
  true
])
param roleDefinitionScopeMustBeAManagedScope bool

@description('registrationRoleScope must be the subscription of one of managedScopes.')
@allowed([
  true
])
param registrationRoleScopeMustBeAManagedSubscription bool

@description('Every key of existingSystemTopics must be an entry of imageResourceGroupIds or maintenanceConfigurationIds, spelled exactly the same: a typo would otherwise create a second topic for the source, which Event Grid refuses.')
@allowed([
  true
])
param existingSystemTopicsMustMapListedSources bool

@description('Every value of existingSystemTopics must be the resource id of a Microsoft.EventGrid/systemTopics resource.')
@allowed([
  true
])
param existingSystemTopicsMustBeSystemTopicIds bool

@description('Echo of the checks (a module needs an output to be referenced).')
output ok bool = approversRequireApproverAuthClientId && roleDefinitionScopeMustBeAManagedScope && registrationRoleScopeMustBeAManagedSubscription && existingSystemTopicsMustMapListedSources && existingSystemTopicsMustBeSystemTopicIds
