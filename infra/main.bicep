// The SMS gateway on Azure: a Python Function App on the Flex Consumption plan, its storage
// (tables, queues, the deployment container), Application Insights on a Log Analytics workspace,
// a Key Vault for secrets, optionally Azure Communication Services, and a user-assigned managed
// identity holding only the data roles it needs. No storage keys: the app signs in with the identity.
//
//   az deployment group create -g <group> -f infra/main.bicep -p infra/main.parameters.json
//   azd up    (azure.yaml: provisions this file into a resource group, then publishes the app)

@description('Short name: resource names are made from it and a suffix unique to the resource group.')
@minLength(3)
@maxLength(11)
param name string = 'smsgw'

param location string = resourceGroup().location

@allowed(['console', 'acs', 'twilio'])
param smsProvider string = 'console'

@description('Region for numbers written without a country code (ISO 3166).')
param defaultRegion string = 'AU'

@description('Create an Azure Communication Services resource (for SMS_PROVIDER=acs).')
param deployCommunicationServices bool = false

@description('ACS sender number (E.164) acquired on the Communication Services resource.')
param acsFromNumber string = ''

param twilioAccountSid string = ''
param twilioFromNumber string = ''
param twilioMessagingServiceSid string = ''

@secure()
@description('Twilio auth token: stored in Key Vault, read by the app through a Key Vault reference.')
param twilioAuthToken string = ''

@description('Several providers at once (SMS_PROVIDERS), used instead of smsProvider when given: each { name, kind (acs or twilio), fromNumber, accountSid and messagingServiceSid (twilio), rateLimitPerSecond }.')
param providers array = []

@secure()
@description('Each named provider\'s secret, by its name: its Twilio auth token or its ACS connection string. Stored in Key Vault, read by the app through Key Vault references.')
param providerSecrets object = {}

@description('The default routing table (SMS_ROUTES), as JSON text; empty: every provider, in the order named.')
param routes string = ''

@description('The countries a licensee without its own guard may text (SMS_GUARD_HOME_COUNTRIES: ISO 3166 codes, comma-separated); empty: defaultRegion alone.')
param guardHomeCountries string = ''

@description('The operator\'s price table (SMS_PRICES): a CSV file deployed with the app, its path from the app\'s folder (prices.csv); empty: costs unknown.')
param pricesFile string = ''

@secure()
@description('The code the Event Grid subscription URL must carry for /api/sms/receipts/acs.')
param eventGridSecret string = newGuid()

@secure()
@description('SMS_COMMID_KEY, the key that tags the commIds of messages accepted in one storage call: azd reads it back from Key Vault (main.parameters.json), so every deployment keeps it; empty or short on the first, when commIdKeyFiller completes it.')
param commIdKey string = ''

@secure()
@description('Completes a commIdKey shorter than the 32 characters the app needs: on the first deployment only, as later ones read the whole key back.')
param commIdKeyFiller string = newGuid()

@description('SMS_ACCEPT_ONE_CALL: empty, accept eligible messages in one storage call (the default, issue 30); off, the two-call accept (for one deployment when upgrading from a version before it).')
param acceptOneCall string = ''

@description('Most instances the app may scale to (rate limits are per instance: see docs/scaling.md).')
param maximumInstanceCount int = 40

@description('Sign-in with Entra ID in front of the operator console (/console): the client id of an app registration whose redirect URI is https://<app host>/.auth/login/aad/callback. Empty: no sign-in in front of it (the default); the console still needs an API key.')
param consoleEntraClientId string = ''

@description('The tenant of that app registration; empty: the tenant of this subscription.')
param consoleEntraTenantId string = ''

@secure()
@description('A client secret of that app registration: stored in Key Vault, read by App Service Authentication through a Key Vault reference.')
param consoleEntraClientSecret string = ''

// At least sms/config.py's MIN_COMMID_KEY_CHARS (32): azd's first random password is 15 characters.
var commIdKeyValue = length(commIdKey) >= 32 ? commIdKey : '${commIdKey}${commIdKeyFiller}'
var suffix = uniqueString(resourceGroup().id)
var appName = '${name}-${suffix}'
var storageName = toLower(take('${name}${suffix}', 24))
// SmsOptOuts holds opt-outs in the layout before SmsOptOutsByNumber: the gateway moves them out and empties it.
// Kept here so that no deployment mode could ever delete a table that may still hold STOPs.
var tables = ['SmsMessages', 'SmsApiKeys', 'SmsInbound', 'SmsReplyRoutes', 'SmsOptOutsByNumber', 'SmsOptOuts', 'SmsIdempotency', 'SmsLedger', 'SmsWebhooks', 'SmsWebhookLog', 'SmsLicensees', 'SmsPending', 'SmsGuardBlocks', 'SmsSpend', 'SmsOptOutIndex']
var queues = ['sms-send', 'sms-send-poison', 'sms-accept', 'sms-accept-poison', 'sms-webhooks', 'sms-webhooks-poison']
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${appName}-id'
  location: location
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageName
  location: location
  sku: { name: 'Standard_LRS' }
  kind: 'StorageV2'
  properties: {
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    supportsHttpsTrafficOnly: true
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource deployments 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: 'deployments'
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource appTables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for table in tables: {
  parent: tableService
  name: table
}]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource appQueues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for queue in queues: {
  parent: queueService
  name: queue
}]

// Only the data roles the app needs: blobs for the Functions host (deployment package, leases),
// queues for the jobs, tables for the records. No account keys anywhere.
resource storageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in [roles.storageBlobDataOwner, roles.storageQueueDataContributor, roles.storageTableDataContributor]: {
  name: guid(storage.id, identity.id, role)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}]

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${appName}-logs'
  location: location
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${appName}-ai'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
  }
}

resource communication 'Microsoft.Communication/communicationServices@2023-04-01' = if (deployCommunicationServices) {
  name: '${appName}-acs'
  location: 'global'
  properties: {
    dataLocation: 'Australia'
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: take('${name}kv${suffix}', 24)
  location: location
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
  }
}

resource vaultRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identity.id, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource eventGridSecretValue 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'eventgrid-secret'
  properties: { value: eventGridSecret }
}

resource commIdKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'commid-key'
  properties: { value: commIdKeyValue }
}

resource twilioTokenValue 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(twilioAuthToken)) {
  parent: vault
  name: 'twilio-auth-token'
  properties: { value: twilioAuthToken }
}

resource acsConnectionValue 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (deployCommunicationServices) {
  parent: vault
  name: 'acs-connection-string'
  properties: { value: deployCommunicationServices ? communication.listKeys().primaryConnectionString : '' }
}

resource consoleEntraSecretValue 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(consoleEntraClientId) && !empty(consoleEntraClientSecret)) {
  parent: vault
  name: 'console-entra-client-secret'
  properties: { value: consoleEntraClientSecret }
}

// One secret a named provider, each its own Key Vault reference in the app's settings below.
resource providerSecretValues 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [for p in providers: {
  parent: vault
  name: 'provider-${p.name}'
  properties: { value: providerSecrets[p.name] }
}]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: '${appName}-plan'
  location: location
  kind: 'functionapp'
  sku: { tier: 'FlexConsumption', name: 'FC1' }
  properties: { reserved: true }
}

var secretReference = '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/'
// Each named provider's settings, SMS_PROVIDER_<NAME>_... (sms/config.py provider_instances), its secret a Key Vault reference.
var providerSettings = flatten(map(providers, p => [
  { name: 'SMS_PROVIDER_${toUpper(replace(p.name, '-', '_'))}_KIND', value: p.kind }
  { name: 'SMS_PROVIDER_${toUpper(replace(p.name, '-', '_'))}_${p.kind == 'acs' ? 'CONNECTION_STRING' : 'AUTH_TOKEN'}'
    value: '${secretReference}provider-${p.name})' }
  { name: 'SMS_PROVIDER_${toUpper(replace(p.name, '-', '_'))}_FROM_NUMBER', value: p.?fromNumber ?? '' }
  { name: 'SMS_PROVIDER_${toUpper(replace(p.name, '-', '_'))}_ACCOUNT_SID', value: p.?accountSid ?? '' }
  { name: 'SMS_PROVIDER_${toUpper(replace(p.name, '-', '_'))}_MESSAGING_SERVICE_SID', value: p.?messagingServiceSid ?? '' }
  { name: 'SMS_PROVIDER_${toUpper(replace(p.name, '-', '_'))}_RATE_LIMIT_PER_SECOND', value: string(p.?rateLimitPerSecond ?? 0) }
]))

// The app setting that holds the console's Entra client secret: the name the portal gives it too.
var consoleEntraSecretSetting = 'MICROSOFT_PROVIDER_AUTHENTICATION_SECRET'

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  kind: 'functionapp,linux'
  // How `azd deploy` finds the app to publish to: the tag's value is the service's name in azure.yaml.
  tags: { 'azd-service-name': 'gateway' }
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identity.id}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identity.id
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}deployments'
          authentication: { type: 'UserAssignedIdentity', userAssignedIdentityResourceId: identity.id }
        }
      }
      scaleAndConcurrency: { maximumInstanceCount: maximumInstanceCount, instanceMemoryMB: 2048 }
      runtime: { name: 'python', version: '3.11' }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      appSettings: concat([
        { name: 'SMS_PROVIDERS', value: join(map(providers, p => p.name), ',') }
        { name: 'SMS_ROUTES', value: routes }
        // Identity-based storage, for the Functions host and the app's own clients alike.
        { name: 'AzureWebJobsStorage__accountName', value: storage.name }
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        { name: 'AzureWebJobsStorage__clientId', value: identity.properties.clientId }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
        { name: 'SMS_PROVIDER', value: smsProvider }
        { name: 'SMS_DEFAULT_REGION', value: defaultRegion }
        { name: 'SMS_GUARD_HOME_COUNTRIES', value: guardHomeCountries }
        { name: 'SMS_PRICES', value: pricesFile }
        { name: 'SMS_PUBLIC_BASE_URL', value: 'https://${appName}.azurewebsites.net' }
        { name: 'SMS_EVENTGRID_SECRET', value: '${secretReference}eventgrid-secret)' }
        { name: 'SMS_COMMID_KEY', value: '${secretReference}commid-key)' }
        { name: 'SMS_ACCEPT_ONE_CALL', value: acceptOneCall }
        { name: 'ACS_CONNECTION_STRING', value: deployCommunicationServices ? '${secretReference}acs-connection-string)' : '' }
        { name: 'ACS_FROM_NUMBER', value: acsFromNumber }
        { name: 'TWILIO_ACCOUNT_SID', value: twilioAccountSid }
        { name: 'TWILIO_AUTH_TOKEN', value: empty(twilioAuthToken) ? '' : '${secretReference}twilio-auth-token)' }
        { name: 'TWILIO_FROM_NUMBER', value: twilioFromNumber }
        { name: 'TWILIO_MESSAGING_SERVICE_SID', value: twilioMessagingServiceSid }
        // Read by App Service Authentication, never by the app (consoleSignIn below names it).
        { name: consoleEntraSecretSetting, value: empty(consoleEntraClientId) || empty(consoleEntraClientSecret) ? '' : '${secretReference}console-entra-client-secret)' }
      ], providerSettings)
    }
  }
  dependsOn: [storageRoles, vaultRole, appTables, appQueues, deployments, commIdKeySecret]
}

// Optional: App Service Authentication (Easy Auth, the authsettingsV2 API) with Entra ID in front of the operator console.
// Two locks: Entra decides who may load the console's page; the API key the operator signs in with decides what they can do.
// Shape: learn.microsoft.com/azure/templates/microsoft.web/2024-04-01/sites/config-authsettingsv2; what each field means and
// the two forms of an excluded path ("/path1", "/path3/subpath/*"): MicrosoftDocs/azure-docs
// articles/app-service/configure-authentication-file-based.md. Every route of the gateway but /console and /console/{asset}
// is excluded, so API clients, ServiceStack clients and the vendors' callbacks (/api/sms/receipts/*, /api/sms/inbound/*)
// never meet a login page; tests/unit/test_infra.py checks the list against every route in sms/entrypoints/routes.py.
// Not verified on Azure: Flex Consumption's page (articles/azure-functions/flex-consumption-plan.md) listed Easy Auth as
// unsupported in its 2024 preview ("unauthenticated callers currently aren't blocked"); its 2026 revision no longer lists it,
// and the Consumption-to-Flex migration guide (migration/migrate-plan-consumption-to-flex.md, "Identify built-in
// authentication settings") says to recreate them in the new Flex app, but neither says it is supported. Before relying on
// it, check that an anonymous GET of AZURE_CONSOLE_URL answers 302 to login.microsoftonline.com and that an API call with a
// key still answers as before. Whether excludedPaths match case-insensitively, as the host's routes do, is not documented.
resource consoleSignIn 'Microsoft.Web/sites/config@2024-04-01' = if (!empty(consoleEntraClientId)) {
  parent: app
  name: 'authsettingsV2'
  properties: {
    platform: { enabled: true }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'RedirectToLoginPage'
      excludedPaths: [
        '/api/*' // the client API, its OpenAPI and metadata, the vendors' callbacks
        '/json/*' // ServiceStack's predefined routes: /json/reply/{operation}, /json/metadata
        '/jsv/*'
        '/types' // ServiceStack's client code: /types, /types/{metadata,typescript,python,csharp}
        '/types/*'
        '/metadata'
      ]
    }
    httpSettings: { requireHttps: true }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          openIdIssuer: '${environment().authentication.loginEndpoint}${empty(consoleEntraTenantId) ? subscription().tenantId : consoleEntraTenantId}/v2.0'
          clientId: consoleEntraClientId
          // Named only when a secret is given (the usual sign-in, the authorization code flow, needs one); without it the app
          // registration must issue ID tokens itself, a mode not tried here.
          clientSecretSettingName: empty(consoleEntraClientSecret) ? null : consoleEntraSecretSetting
        }
      }
    }
    // The console needs no Entra tokens (it calls the API with the key), only the sign-in cookie: nothing to store.
    login: { tokenStore: { enabled: false } }
  }
  dependsOn: [consoleEntraSecretValue]
}

// Upper-case names: `azd up` keeps each output as a variable of its environment (`azd env get-value AZURE_FUNCTION_NAME`);
// `az deployment group show ... --query properties.outputs.AZURE_FUNCTION_NAME.value` reads the same.
output AZURE_FUNCTION_NAME string = app.name
output AZURE_FUNCTION_URL string = 'https://${app.properties.defaultHostName}'
// The operator console, served by the app itself (sms/entrypoints/operator_console.py): same host, so no CORS.
output AZURE_CONSOLE_URL string = 'https://${app.properties.defaultHostName}/console'
output AZURE_STORAGE_ACCOUNT_NAME string = storage.name
output AZURE_KEY_VAULT_NAME string = vault.name
output EVENTGRID_RECEIPT_URL string = 'https://${app.properties.defaultHostName}/api/sms/receipts/acs?code=<the eventgrid-secret in ${vault.name}>'
