// The Function App on the Flex Consumption plan (FC1, Linux, Python 3.11). Everything runs
// as the user-assigned identity: AzureWebJobsStorage, the deployment package download,
// Application Insights ingestion, Key Vault references and the remediator's own Azure
// calls (AZURE_CLIENT_ID makes DefaultAzureCredential pick it).

@description('Name of the Function App (also its default host name prefix).')
param name string

@description('Name of the Flex Consumption plan.')
param planName string

@description('Azure region of the plan and the app (must offer Flex Consumption).')
param location string

@description('Tags applied to the plan and the app.')
param tags object = {}

@description('azd service name; azd finds the app to deploy to by the azd-service-name tag.')
param serviceName string = 'api'

@description('Resource id of the user-assigned identity the app runs as.')
param identityId string

@description('Client id of that identity.')
param identityClientId string

@description('Name of the app storage account (identity-based AzureWebJobsStorage).')
param storageAccountName string

@description('Blob endpoint of the app storage account.')
param storageBlobEndpoint string

@description('Container holding the deployment package.')
param deploymentContainerName string

@description('Application Insights connection string.')
param applicationInsightsConnectionString string

@description('Versionless Key Vault secret URI of the Teams webhook URL.')
param teamsWebhookSecretUri string

@description('Versionless Key Vault secret URI of the approval signing key.')
param signingKeySecretUri string

@description('Python version of the Flex Consumption runtime.')
@allowed([
  '3.11'
])
param pythonVersion string = '3.11'

@description('Memory of each instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Upper bound of instances the plan may scale out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Remediator app settings (REMEDIATOR_*), merged over the platform settings.')
param remediatorSettings object

@description('Client id of the Entra app registration App Service authentication (Easy Auth) signs approvers in with. Empty: authentication is not configured (and REMEDIATOR_APPROVERS must stay empty).')
param approverAuthClientId string = ''

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225:Zone redundancy is an opt-in cost that not every Flex Consumption region offers; Event Grid retries each event for up to a day, so a zone outage delays remediation instead of losing it.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_17:The callers are Event Grid, Azure Monitor action groups and people following approval links; none of them can present a client certificate. Requests are authorized by function keys and signed links.
  // checkov:skip=CKV_AZURE_222:Event Grid and action-group webhooks deliver over the public endpoint; closing it needs private networking this deployment does not create. HTTPS only, TLS 1.2, function keys.
  // checkov:skip=CKV_AZURE_212:Flex Consumption scales from zero per event; always-ready instances would be billed while idle, and Event Grid retries absorb cold starts.
  // checkov:skip=CKV_AZURE_78:FTP(S) deployment does not exist on Flex Consumption (siteConfig.ftpsState is 'FTPS not supported' there and newer stamps reject it with 51021); code is deployed from the blob container in functionAppConfig.deployment only.
  // checkov:skip=CKV_AZURE_67:siteConfig.http20Enabled is refused on newer Flex Consumption stamps (error 51021), so the HTTP version cannot be set in the template; the platform front end negotiates the protocol.
  // checkov:skip=CKV_AZURE_18:Same as CKV_AZURE_67 (the web-app variant of the HTTP version check): siteConfig.http20Enabled is refused on newer Flex Consumption stamps (error 51021).
  // checkov:skip=CKV_AZURE_213:Health check replaces unhealthy instances of always-running plans; this app scales to zero per event and has no health route. Failures surface as exceptions in Application Insights.
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': serviceName
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identityId
    // Only what Flex Consumption accepts: ftpsState is not supported on Flex (Flex Consumption
    // plan deprecations) and newer FC1 stamps refuse ftpsState, http20Enabled,
    // remoteDebuggingEnabled and scmMinTlsVersion with error 51021; the checks they satisfied
    // are skipped above with the reason. minTlsVersion is not on the deprecation list and stays.
    siteConfig: {
      minTlsVersion: '1.2'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

// Platform settings. Flex Consumption takes the runtime from functionAppConfig, so
// FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION / WEBSITE_RUN_FROM_PACKAGE are
// deliberately absent (they are rejected on this plan).
var platformSettings = {
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  AZURE_CLIENT_ID: identityClientId
  REMEDIATOR_PUBLIC_URL: 'https://${functionApp.properties.defaultHostName}'
  REMEDIATOR_TEAMS_WEBHOOK_URL: '@Microsoft.KeyVault(SecretUri=${teamsWebhookSecretUri})'
  REMEDIATOR_SIGNING_KEY: '@Microsoft.KeyVault(SecretUri=${signingKeySecretUri})'
}

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov treats every sites/config as the 'web'/'logs'/'authsettings' config; this one is 'appsettings' (name/value pairs only), so these checks cannot apply to it:
  // checkov:skip=CKV_AZURE_13:Not an auth config. The HTTP functions are called by Event Grid and action-group webhooks that cannot pass App Service Authentication; function keys and signed approval links authorize them.
  // checkov:skip=CKV_AZURE_222:Not a network config; public network access is decided on the site (see its CKV_AZURE_222 reason).
  // checkov:skip=CKV_AZURE_63:Not a logs config; Flex Consumption has no App Service HTTP logs, requests are logged to Application Insights.
  // checkov:skip=CKV_AZURE_65:Not a logs config; detailed error pages would only disclose internals, errors go to Application Insights.
  // checkov:skip=CKV_AZURE_66:Not a logs config; failed request tracing is an IIS feature, absent on Linux Flex Consumption; failures go to Application Insights.
  // checkov:skip=CKV_AZURE_80:Not a web config, and a Python app: there is no .NET Framework version to set.
  // checkov:skip=CKV_AZURE_88:Flex Consumption runs the package from blob storage (functionAppConfig.deployment) and has no Azure Files content share.
  parent: functionApp
  name: 'appsettings'
  properties: union(remediatorSettings, platformSettings)
}

// App Service authentication (Easy Auth), the identity check REMEDIATOR_APPROVERS relies on: the
// platform validates the Entra sign-in and injects X-MS-CLIENT-PRINCIPAL, stripping any copy a
// client sends, and sets WEBSITE_AUTH_ENABLED=True for the app. Anonymous requests still reach
// the app (AllowAnonymous), so function-key routes (Event Grid, the action group, the API) keep
// working; the approval page sends the browser to /.auth/login/aad when it needs a user. No
// client secret: the provider then signs users in with the OpenID Connect implicit flow (ID
// token only), and no token store, because the app only reads the injected principal.
resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = if (!empty(approverAuthClientId)) {
  // checkov treats every sites/config as the 'web'/'logs' config; this one is 'authsettingsV2', so these checks cannot apply to it:
  // checkov:skip=CKV_AZURE_13:This is the App Service authentication config itself (authsettingsV2, platform.enabled true); the check reads the v1 authsettings flag.
  // checkov:skip=CKV_AZURE_222:Not a network config; public network access is decided on the site (see its CKV_AZURE_222 reason).
  // checkov:skip=CKV_AZURE_63:Not a logs config; Flex Consumption has no App Service HTTP logs, requests are logged to Application Insights.
  // checkov:skip=CKV_AZURE_65:Not a logs config; detailed error pages would only disclose internals, errors go to Application Insights.
  // checkov:skip=CKV_AZURE_66:Not a logs config; failed request tracing is an IIS feature, absent on Linux Flex Consumption; failures go to Application Insights.
  // checkov:skip=CKV_AZURE_80:Not a web config, and a Python app: there is no .NET Framework version to set.
  // checkov:skip=CKV_AZURE_88:Flex Consumption runs the package from blob storage (functionAppConfig.deployment) and has no Azure Files content share.
  parent: functionApp
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
      runtimeVersion: '~1'
    }
    globalValidation: {
      requireAuthentication: false
      unauthenticatedClientAction: 'AllowAnonymous'
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: approverAuthClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            approverAuthClientId
            'api://${approverAuthClientId}'
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
  // One write to the site's configuration at a time.
  dependsOn: [
    appSettings
  ]
}

@description('Resource id of the Function App (Event Grid destinations append /functions/<name>).')
output id string = functionApp.id

@description('Name of the Function App.')
output name string = functionApp.name

@description('Default host name, e.g. <name>.azurewebsites.net.')
output defaultHostName string = functionApp.properties.defaultHostName
