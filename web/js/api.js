// The only way the consoles get data: the authenticated /v1 API with the bearer token kept in sessionStorage.
const KEY = "hotline.session";

export function session() {
  try { return JSON.parse(sessionStorage.getItem(KEY)); } catch { return null; }
}

export function saveSession(s) { sessionStorage.setItem(KEY, JSON.stringify(s)); }

export function logout(reason) {
  sessionStorage.removeItem(KEY);
  location.href = "/console/" + (reason ? `?msg=${encodeURIComponent(reason)}` : "");
}

export class ApiError extends Error {
  constructor(status, body) {
    super(typeof body?.detail === "string" ? body.detail : `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

export async function api(path, { method = "GET", json, body, headers = {}, raw = false } = {}) {
  const s = session();
  const h = { ...headers };
  if (s?.token) h.Authorization = `Bearer ${s.token}`;
  if (json !== undefined) {
    h["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  const r = await fetch(`/v1${path}`, { method, headers: h, body });
  if (r.status === 401 && s?.token) logout("登录已过期，请重新登录");
  if (!r.ok) {
    let data = null;
    try { data = await r.json(); } catch { /* not JSON */ }
    throw new ApiError(r.status, data);
  }
  if (raw) return r;
  if (r.status === 204) return null;
  return r.json();
}

const PREFIX = { 400: "输入有误", 403: "无此权限", 404: "未找到", 409: "操作冲突", 422: "输入有误", 429: "操作过于频繁" };

// A Mandarin sentence for an API error (the server's detail is kept, it names the field or the rule).
export function errorText(e) {
  if (!(e instanceof ApiError)) return `网络或页面错误：${e?.message || e}`;
  let detail = e.body?.detail;
  if (Array.isArray(detail)) {
    detail = detail.map((d) => `${(d.loc || []).filter((x) => x !== "body").join(".")}: ${d.msg}`).join("；");
  }
  const head = PREFIX[e.status] || (e.status >= 500 ? "服务器错误" : `错误 ${e.status}`);
  const allowed = e.body?.allowed ? `（可执行：${[].concat(e.body.allowed).join("、")}）` : "";
  return `${head}：${detail || e.message}${allowed}`;
}

// Pages await this first: no session or the wrong role → back to the login page (the page's module stops here).
export async function guard(roles) {
  const s = session();
  if (s?.token && roles.includes(s.role)) return s;
  location.replace(s?.token ? `/console/?msg=${encodeURIComponent("当前账号无权使用该页面")}`
    : `/console/?next=${encodeURIComponent(location.pathname)}`);
  return new Promise(() => {}); // never resolves: nothing else on this page runs
}

export function wsUrl(path) {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  return `${proto}://${location.host}/v1${path}?token=${encodeURIComponent(session()?.token || "")}`;
}

// Which consoles each role may open (the API enforces the rest).
export const CONSOLES = {
  admin: ["admin", "supervisor", "agent"],
  supervisor: ["supervisor", "agent"],
  agent: ["agent"],
  department: [],
};

// Download an authenticated file (export): fetch with the token, then save the blob.
export async function download(path, filename) {
  const r = await api(path, { raw: true });
  const url = URL.createObjectURL(await r.blob());
  const a = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
