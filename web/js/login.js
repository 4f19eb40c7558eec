// Login: OAuth2 password flow → bearer token in sessionStorage → the console for the role.
import { api, CONSOLES, errorText, saveSession, session } from "./api.js";
import { $, h, msg } from "./dom.js";

const params = new URLSearchParams(location.search);
if (params.get("msg")) msg($("#login-msg"), params.get("msg"), "warn");

function landing(role) {
  const allowed = CONSOLES[role] || [];
  const next = params.get("next")?.replace("/console/", "");
  if (next && allowed.includes(next)) return `/console/${next}`;
  return allowed.length ? `/console/${allowed[0]}` : null;
}

const current = session();
if (current?.token && landing(current.role)) {
  if (params.get("msg")) {  // sent here with a message: show it, offer the way back
    $("#login-msg").append(h("p", {}, h("a", { href: landing(current.role) }, "返回我的工作台")));
  } else {
    location.replace(landing(current.role));
  }
}

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const btn = $("#login-btn");
  btn.disabled = true;
  msg($("#login-msg"), "");
  try {
    const body = new URLSearchParams({ username: $("#username").value.trim(), password: $("#password").value });
    const r = await fetch("/v1/auth/token", { method: "POST", body });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) {
      const text = r.status === 429 ? "登录尝试过多，请稍后再试" : r.status === 401 ? "用户名或密码错误" : `登录失败：${data.detail || r.status}`;
      msg($("#login-msg"), text);
      return;
    }
    saveSession({ token: data.access_token, role: data.role, username: $("#username").value.trim() });
    const me = await api("/auth/me");
    saveSession({ token: data.access_token, role: me.role, username: me.username, name: me.display_name, id: me.id,
      sip_endpoint: me.sip_endpoint });
    const to = landing(me.role);
    if (!to) {
      sessionStorage.clear();
      msg($("#login-msg"), "部门用户请通过工单接口办理，本平台仅供热线坐席、值班长和管理员使用");
      return;
    }
    location.href = to;
  } catch (e) {
    msg($("#login-msg"), errorText(e));
  } finally {
    btn.disabled = false;
  }
});
