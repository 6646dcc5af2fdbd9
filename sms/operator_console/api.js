// The console's one door to the gateway: its public HTTP API, with the key the operator signed in with.
//
// The key lives in sessionStorage: this tab's, gone when the tab closes, never in a URL or in local storage, and
// never written into the page. It goes out as `Authorization: Bearer`, to this origin only.

const KEY = "sms-console-key";
const ACTING = "sms-console-licensee";

export class ApiError extends Error {
  constructor(status, body) {
    const responseStatus = body && (body.responseStatus || body.ResponseStatus);
    const detail = responseStatus && (responseStatus.message || responseStatus.Message);
    super(detail ? `${detail} (HTTP ${status})` : `The gateway answered HTTP ${status}`);
    this.status = status;
    this.code = responseStatus && (responseStatus.errorCode || responseStatus.ErrorCode);
    this.body = body;
  }
}

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  set key(value) { value ? sessionStorage.setItem(KEY, value) : sessionStorage.removeItem(KEY); },
  // The licensee an admin key works on (null: the key's own), for the tab as well.
  get acting() { return sessionStorage.getItem(ACTING); },
  set acting(value) { value ? sessionStorage.setItem(ACTING, value) : sessionStorage.removeItem(ACTING); },
  clear() { sessionStorage.removeItem(KEY); sessionStorage.removeItem(ACTING); },
};

// call("GET", "api/sms", {query: {take: 50}}) -> the answer's JSON; ApiError for anything but 2xx.
// `licensee: true` adds the licensee an admin is acting for, as the API's `licenseeId` parameter.
export async function call(method, path, { query = {}, body, licensee = false, key = session.key, headers: extra = {} } = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(name, value);
  }
  if (licensee && session.acting) params.set("licenseeId", session.acting);
  const url = `/${path}${params.size ? `?${params}` : ""}`;
  const headers = { Accept: "application/json", ...extra };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}
