// Every operation of the gateway through @servicestack/client's JsonServiceClient and the DTOs typescript-ref wrote
// (./ref/dtos.ts), as a TypeScript user of the old service would call them. Run by tests/e2e/test_typescript_reference.py,
// which starts the gateway and a webhook receiver on 127.0.0.1 and asserts on what this prints:
//   SECRET <whsec_...>   once the webhook endpoint is added; then it waits for a line on stdin (the receiver has the secret)
//   RESULTS <json>       each operation's answer, as the client read it
// Environment: BASE_URL, API_KEY, ADMIN_KEY (an admin's, for the key operations), RECEIVER_URL.
import * as readline from "node:readline";
import { JsonServiceClient } from "@servicestack/client";
import {
    AddWebhookEndpoint, CancelSms, CreateApiKey, DeleteWebhookEndpoint, EnableWebhookEndpoint, EstimateSms, GetCurrentApiKey,
    GetGuard, GetLicenseeSettings, GetProviders, GetRoutingTable, GetSmsReplies, GetSmsStatus, GetUsage, GetWebhookDeliveries,
    GetWebhookEndpoints, GuardCaps, IReturn, QueryApiKeys, QuerySms, ReplayWebhookEvents, ResetGuard, ResetRoutingTable,
    RevokeApiKey, RotateApiKey, RotateWebhookSecret, RouteRule, SetGuard, SetLicenseeSettings, SetRoutingTable, SMSContact,
    SMSModel, SMSSend,
    GetSmsEvents, QueryLicensees,  // issue 29
} from "./ref/dtos.js";
import { AddOptOut, GetOptOutHistory, QueryOptOuts, RemoveOptOut } from "./ref/dtos.js";  // opt-outs

const client = new JsonServiceClient(process.env.BASE_URL!);
client.bearerToken = process.env.API_KEY!;
const results: Record<string, unknown> = {};
const started = new Date(Date.now() - 60_000).toISOString();

// An operation through client.api(): its typed answer, or the ResponseStatus it failed with (thrown, to stop the run).
async function call<T>(name: string, request: IReturn<T>): Promise<T> {
    const result = await client.api(request);
    if (!result.succeeded) {
        throw new Error(`${name} failed: ${JSON.stringify(result.error)}`);
    }
    results[name] = result.response;
    return result.response as T;
}

// Asks again until the answer is as wanted (the ledger and the webhook deliveries follow a send within seconds).
async function until<T>(name: string, request: IReturn<T>, done: (answer: T) => boolean): Promise<T> {
    const deadline = Date.now() + 90_000;
    for (;;) {
        const answer = await call(name, request);
        if (done(answer)) return answer;
        if (Date.now() > deadline) throw new Error(`${name} never answered as expected: ${JSON.stringify(answer)}`);
        await new Promise(resolve => setTimeout(resolve, 250));
    }
}

const contact = (phoneNumber: string) => new SMSContact({ name: "Sam", phoneNumber });
const sms = (phoneNumber: string, more: Partial<SMSModel> = {}) =>
    new SMSSend({ smsModel: new SMSModel({ to: [contact(phoneNumber)], messageBody: "Hello from typescript-ref's DTOs", ...more }) });

// The licensee's settings: providers, its routing table and its guard.
await call("getProviders", new GetProviders());
await call("getRoutingTableBefore", new GetRoutingTable());
await call("setRoutingTable", new SetRoutingTable({ rules: [
    new RouteRule({ match: "AU", providers: ["console"], sender: "Clinic" }), new RouteRule({ match: "*", providers: ["console"] })] }));
await call("getRoutingTable", new GetRoutingTable());
await call("resetRoutingTable", new ResetRoutingTable());
await call("resetGuard", new ResetGuard());
await call("setGuard", new SetGuard({ caps: new GuardCaps({ dailySegments: 1000 }) }));  // tighter: a key may do that
await call("getGuard", new GetGuard());
// Its quiet hours and zone: set, read, and cleared again before anything is sent (inside them, the sends below would wait).
await call("setLicenseeSettings", new SetLicenseeSettings({ quietHours: "21:00-08:00", timeZone: "Australia/Sydney" }));
await call("getLicenseeSettings", new GetLicenseeSettings());
await call("clearQuietHours", new SetLicenseeSettings({ noQuietHours: true, timeZone: "UTC" }));

// API keys: what this key is; then, with an admin's key, a read-only key for this licensee made, listed, rotated, revoked.
await call("currentKey", new GetCurrentApiKey());
const admin = new JsonServiceClient(process.env.BASE_URL!);
admin.bearerToken = process.env.ADMIN_KEY!;
async function asAdmin<T>(name: string, request: IReturn<T>): Promise<T> {
    const result = await admin.api(request);
    if (!result.succeeded) throw new Error(`${name} failed: ${JSON.stringify(result.error)}`);
    results[name] = result.response;
    return result.response as T;
}
const current = results.currentKey as { licenseeId: string };
const made = await asAdmin("createKey", new CreateApiKey({ licenseeId: current.licenseeId, name: "desk", readOnly: true }));
await asAdmin("queryKeys", new QueryApiKeys({ licenseeId: current.licenseeId }));
const rotation = await asAdmin("rotateKey", new RotateApiKey({ keyId: made.keyId, graceHours: 0 }));
await asAdmin("revokeKey", new RevokeApiKey({ keyId: rotation.newKey.keyId }));

// A webhook endpoint on the test's receiver; the receiver learns its secret before anything is sent.
const endpoint = await call("addWebhookEndpoint", new AddWebhookEndpoint({ url: process.env.RECEIVER_URL!, eventTypes: ["message.sent", "message.cancelled"] }));
console.log(`SECRET ${endpoint.secret}`);
await new Promise(resolve => readline.createInterface({ input: process.stdin }).once("line", resolve));

// Sending: api() and post() of one SMSSend, sendAll() of two (ServiceStack's auto-batch, POST /api/SMSSend[]).
const first = await call("sendWithApi", sms("+61412700101"));
results.sendWithPost = await client.post(sms("+61412700102"));
results.sendAll = await client.sendAll([sms("+61412700103"), sms("+61412700104")]);
const invalid = await client.api(new SMSSend({ smsModel: new SMSModel({ to: [], messageBody: "To nobody" }) }));
results.invalid = { succeeded: invalid.succeeded, error: invalid.error };
await call("estimate", new EstimateSms({ smsModel: new SMSModel({ to: [contact("+61412700105"), contact("+447400123456")], messageBody: "What would it cost?" }) }));

// Reading and cancelling.
// Right after a one-call accept (issue 30) the message may still be being written: queued, its recipients [] until
// the worker writes them (about a second), so a client that needs them waits for them.
await call("statusRightAfter", new GetSmsStatus({ commId: first.commId }));
await until("status", new GetSmsStatus({ commId: first.commId }), answer => answer.recipients.length > 0);
await call("replies", new GetSmsReplies({ commId: first.commId }));
const tomorrow = new Date(Date.now() + 86_400_000).toISOString();
const scheduled = await call("sendScheduled", sms("+61412700106", { sendAt: tomorrow }));
await call("cancel", new CancelSms({ commId: scheduled.commId }));
await call("statusAfterCancel", new GetSmsStatus({ commId: scheduled.commId }));
await until("queryByPhoneNumber", new QuerySms({ phoneNumber: "0412 700 102", take: 10 }), page => page.messages.length > 0);
await call("queryByReference", new QuerySms({ reference: first.reference, from: started }));
await until("usage", new GetUsage(), answer => answer.days.reduce((sum, day) => sum + day.messages, 0) >= 5);

// The webhook endpoint: listed, delivered to, rotated, enabled, replayed, removed.
const endpointId = endpoint.endpointId;
await call("webhookEndpoints", new GetWebhookEndpoints());
await until("deliveries", new GetWebhookDeliveries({ endpointId, take: 50 }),
    log => log.deliveries.filter(d => d.eventType === "message.sent" && d.outcome === "delivered").length >= 4);
await call("rotateSecret", new RotateWebhookSecret({ endpointId }));
await call("enable", new EnableWebhookEndpoint({ endpointId }));
await call("replay", new ReplayWebhookEvents({ endpointId, from: started, to: new Date(Date.now() + 60_000).toISOString() }));
await call("deleteEndpoint", new DeleteWebhookEndpoint({ endpointId }));
await call("webhookEndpointsAfterDelete", new GetWebhookEndpoints());

// opt-outs: a manual add, the list, the history, and the removal, each with its reason.
await call("addOptOut", new AddOptOut({ phoneNumber: "0412 700 199", reason: "asked by phone" }));
await call("queryOptOuts", new QueryOptOuts({ phoneNumber: "+61412700199", take: 10 }));
await call("optOutHistory", new GetOptOutHistory({ phoneNumber: "+61412700199" }));
await call("removeOptOut", new RemoveOptOut({ phoneNumber: "+61412700199", reason: "consent on file" }));
// Issue 29: every licensee and an admin acting for this one (admin key); the webhook events a message produced.
await asAdmin("queryLicensees", new QueryLicensees());
await asAdmin("settingsAsAdmin", new GetLicenseeSettings({ licenseeId: current.licenseeId }));
await call("smsEvents", new GetSmsEvents({ commId: first.commId }));

console.log(`RESULTS ${JSON.stringify(results)}`);
process.exit(0);
