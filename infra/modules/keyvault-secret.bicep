// One Key Vault secret. A module of its own so keyvault.bicep can write a secret only when a
// value was given (a conditional module) while the secret resource itself stays plain and
// fully checked by checkov (it does not look inside conditional resources).

@description('Name of the existing Key Vault.')
param vaultName string

@description('Name of the secret.')
param name string

@description('Value of the secret.')
@secure()
param value string

@description('Content type recorded with the secret (what the value is).')
param contentType string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41:Key Vault documents that an expired secret is not to be returned (SecretExpired), which would silently break the app's Key Vault reference; these secrets are rotated by writing a new version (infra/README.md), and the app always reads the latest.
  parent: vault
  name: name
  properties: {
    value: value
    contentType: contentType
    attributes: {
      enabled: true
    }
  }
}

@description('Versionless URI of the secret.')
output uri string = '${vault.properties.vaultUri}secrets/${secret.name}'
