// Key Vault for the two secrets the app must not keep in plain app settings: the Teams
// Workflows webhook URL (anyone holding it can post to the channel) and the key that signs
// approval links. RBAC authorization only (no access policies); purge protection so a deleted
// vault cannot take the signing key with it before the retention ends.
//
// Neither secret passes through ARM: no template parameter, no output, no deployment history,
// no .azure/<env>/.env. The azd postprovision hook (infra/hooks/remediator_hooks.py) writes
// them straight to the vault's data plane with the deployer's Key Vault Secrets Officer role.

@description('Name of the Key Vault (3-24 characters, globally unique). main.bicep adds a per-lifecycle suffix so a purge-protected vault left soft-deleted by azd down does not block the next azd up.')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region of the vault.')
param location string

@description('Tags applied to the vault.')
param tags object = {}

@description('Object id of the app identity (Key Vault Secrets User, for Key Vault references).')
param identityPrincipalId string

@description('Optional object id of the deploying user, group or service principal, granted Key Vault Secrets Officer so the postprovision hook can create the signing key and operators can set or rotate the secrets. Empty: none.')
param operatorPrincipalId string = ''

@description('Principal type of operatorPrincipalId. Empty: not sent (ARM looks the principal up), which is right for any type.')
@allowed([
  ''
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string = ''

@description('Name of the secret holding the Teams webhook URL.')
param teamsWebhookSecretName string = 'teams-webhook-url'

@description('Name of the secret holding the approval signing key.')
param signingKeySecretName string = 'approval-signing-key'

var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var keyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109:Key Vault references from a Flex Consumption app without VNet integration resolve over the public endpoint, which a deny-by-default firewall would block; access is RBAC-only, to one identity.
  // checkov:skip=CKV_AZURE_189:Same reason as CKV_AZURE_109: public network access is needed for Key Vault references without VNet integration and private endpoints.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource appSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identityPrincipalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource operatorSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(vault.id, operatorPrincipalId, keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficer)
    principalId: operatorPrincipalId
    principalType: empty(operatorPrincipalType) ? null : operatorPrincipalType
  }
}

@description('Name of the vault.')
output name string = vault.name

@description('Vault URI, e.g. https://<name>.vault.azure.net/ (the hooks write the secrets there).')
output uri string = vault.properties.vaultUri

@description('Versionless URI of the Teams webhook secret (the app always reads the latest version).')
output teamsWebhookSecretUri string = '${vault.properties.vaultUri}secrets/${teamsWebhookSecretName}'

@description('Versionless URI of the approval signing key secret.')
output signingKeySecretUri string = '${vault.properties.vaultUri}secrets/${signingKeySecretName}'
