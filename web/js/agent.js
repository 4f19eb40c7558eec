// 坐席工作台: seat state, the screen pop (live over the websocket), the order form, KB search, callbacks.
import { api, errorText, guard, wsUrl } from "./api.js";
import { $, badge, every, fill, fmtSeconds, fmtTime, h, label, LABELS, msg, options, table, toast, topbar } from "./dom.js";

const me = await guard(["agent", "supervisor", "admin"]);
topbar("agent", "坐席工作台");

const S = { agent: null, pop: null, callRef: null, categories: [], districts: [], idem: null, connected: new Set() };
const SLOT_NAMES = { address: "地址", district: "区县", category: "分类", description: "诉求", caller_name: "称呼",
  urgency: "紧急程度", time: "时间", place: "地点", company: "单位", amount: "金额" };

async function call(fn, okText) {
  try {
    const r = await fn();
    if (okText) toast(okText);
    return r;
  } catch (e) {
    toast(errorText(e), "error", 6000);
    return undefined;
  }
}

// ------------------------------------------------------------------ seat state
function showAgent(agent) {
  S.agent = agent;
  const state = agent?.state || "logged_out";
  const el = $("#agent-state");
  el.className = `badge ${state}`;
  el.dataset.state = state;
  el.textContent = label("state", state) + (agent?.reason ? `（${agent.reason}）` : "");
  $("#state-since").textContent = agent ? `自 ${fmtTime(agent.since)} 起 · 话机 ${agent.endpoint}` : "";
  $("#seat-login-box").classList.toggle("hidden", !!agent);
  $("#seat-controls").classList.toggle("hidden", !agent);
  $("#go-available").disabled = !["paused", "wrap_up"].includes(state);
  $("#go-paused").disabled = !["available", "wrap_up"].includes(state);
  $("#wrap-box").classList.toggle("hidden", !(state === "wrap_up" || S.callRef));
}

async function refreshAgent() {
  try {
    showAgent(await api("/agents/me"));
  } catch (e) {
    if (e.status === 404) showAgent(null);
  }
}

$("#seat-endpoint").value = me.sip_endpoint || "";
$("#seat-login").onclick = async () => {
  const endpoint = $("#seat-endpoint").value.trim() || undefined;
  const a = await call(() => api("/agents/me/login", { method: "POST", json: { endpoint, ready: false } }),
    "已签入坐席（小休中），点击“就绪”开始接听");
  if (a) showAgent(a);
};
$("#go-available").onclick = async () => {
  const a = await call(() => api("/agents/me/state", { method: "POST", json: { state: "available" } }));
  if (a) showAgent(a);
};
$("#go-paused").onclick = async () => {
  const reason = $("#pause-reason").value;
  const a = await call(() => api("/agents/me/state", { method: "POST", json: { state: "paused", reason } }));
  if (a) showAgent(a);
};
$("#seat-logout").onclick = async () => {
  if ((await call(() => api("/agents/me/logout", { method: "POST" }), "已签出坐席")) !== undefined) showAgent(null);
};

// ------------------------------------------------------------------ screen pop
function catName(code) { return S.categories.find((c) => c.code === code)?.name || code || "—"; }

function slotText(k, v) {
  if (k === "district") return S.districts.find((d) => d.code === v)?.name || String(v);
  if (k === "category") return catName(v);
  if (k === "urgency") return label("urgency", v);
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

function turnLines(t) {
  const out = [];
  const said = t.text || (t.dtmf ? `按键 ${t.dtmf}` : "");
  if (said) out.push(line(t.speaker, said, t.at));
  if (t.reply) out.push(line("bot", t.reply, t.at));
  return out;
}

function line(speaker, text, at, live = false) {
  return h("div", { class: `line ${speaker}${live ? " live" : ""}` },
    h("span", { class: "who" }, label("speaker", speaker)), " ", text,
    at ? h("span", { class: "muted" }, `  ${fmtTime(at)}`) : null);
}

function showPop(pop) {
  S.pop = pop;
  $("#call-empty").classList.toggle("hidden", !!pop);
  $("#call-box").classList.toggle("hidden", !pop);
  if (!pop) return;
  S.callRef = pop.call_id;
  $("#wrap-box").classList.remove("hidden");
  // the pop may arrive after the agent already answered (it is built while the phone rings)
  const answered = S.connected.has(pop.call_id) || (S.agent?.state === "on_call" && S.agent.call_id === pop.call_id);
  setCallStatus(pop.state || (answered ? "connected" : "offered"));
  $("#caller").textContent = pop.caller || "未知号码";
  $("#call-meta").textContent = `队列 ${pop.queue} · ${label("priority", pop.priority)}${pop.skill ? ` · 技能 ${pop.skill}` : ""} · 已等待 ${fmtSeconds(pop.waited_seconds)}`;
  const bot = pop.bot || {};
  const slots = Object.entries(bot.slots || {}).filter(([, v]) => v !== null && v !== "");
  fill($("#bot-info"),
    h("dt", {}, "意图"), h("dd", { id: "bot-intent" }, bot.intent || "—"),
    h("dt", {}, "分类"), h("dd", { id: "bot-category" }, catName(bot.category)),
    bot.summary ? [h("dt", {}, "摘要"), h("dd", {}, bot.summary)] : null,
    bot.reason ? [h("dt", {}, "转人工原因"), h("dd", {}, bot.reason)] : null,
    slots.map(([k, v]) => [h("dt", {}, SLOT_NAMES[k] || k), h("dd", {}, slotText(k, v))]));
  fill($("#transcript"), (pop.transcript || []).map(turnLines));
  countTranscript();
  fill($("#previous-orders"), table([
    ["工单号", (o) => o.ticket], ["分类", (o) => catName(o.category)], ["状态", (o) => o.status_label || o.status],
    ["受理时间", (o) => fmtTime(o.created_at, true)], ["内容", (o) => o.description],
  ], pop.previous_orders || [], { empty: "无历史工单" }));
  showKb(pop.kb || [], "本次来电的知识库建议");
  prefill(pop.form || {});
}

function setCallStatus(state) {
  const el = $("#call-status");
  el.dataset.state = state;
  el.textContent = label("entry", state) || state;
}

function countTranscript() {
  $("#transcript-count").textContent = `（${$("#transcript").children.length} 条）`;
  $("#transcript").scrollTop = $("#transcript").scrollHeight;
}

function onMessage(m) {
  switch (m.type) {
    case "offer": case "pop": case "connected_pop":
      showPop(m);
      if ($("#call-status").dataset.state === "offered") toast("新来电：请在话机上接听", "warn");
      break;
    case "connected":
      S.connected.add(m.call_id);
      if (S.pop?.call_id === m.call_id) setCallStatus("connected");
      break;
    case "transcript":
      if (S.pop?.call_id === m.call_id) {
        $("#transcript").append(line(m.speaker, m.text, m.at, true));
        countTranscript();
      }
      break;
    case "offer_cancelled":
      if (S.pop?.call_id === m.call_id) { showPop(null); S.callRef = null; toast("来电已转给其他坐席或市民已挂机", "warn"); }
      break;
    case "ended":
      if (S.pop?.call_id === m.call_id) { setCallStatus("ended"); toast("通话已结束，请完成工单和话后小结"); }
      break;
    case "transfer_answered": toast("部门已接听，可完成转接"); break;
    case "transfer_failed": toast(`转接未成功：${m.reason || "对方未接听"}`, "error"); break;
    case "state":
      if (S.agent) showAgent({ ...S.agent, state: m.state, reason: m.reason, call_id: m.call_id, since: new Date().toISOString() });
      refreshAgent();
      break;
    default: if (m.call_id && m.transcript) showPop(m);
  }
}

let ws = null;
let backoff = 1000;
function connect() {
  ws = new WebSocket(wsUrl("/agents/ws"));
  const status = $("#ws-status");
  ws.onopen = () => { status.textContent = "推送已连接"; status.className = "badge ok"; backoff = 1000; };
  ws.onmessage = (ev) => { try { onMessage(JSON.parse(ev.data)); } catch (e) { console.error(e); } };
  ws.onclose = () => {
    status.textContent = "推送重连中"; status.className = "badge warn";
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 15000);
  };
}
setInterval(() => { if (ws?.readyState === WebSocket.OPEN) ws.send("ping"); }, 20000);

// ------------------------------------------------------------------ the order form
function prefill(form) {
  const f = $("#order-form");
  f.category.value = form.category || "other";
  f.district.value = form.district || "";
  f.address.value = form.address || "";
  f.caller_name.value = form.caller_name || "";
  f.urgency.value = form.urgency || "";
  f.complexity.value = form.complexity || "";
  f.description.value = form.description || "";
  f.answer.value = "";
  $("#f-phone").value = form.caller_phone || "";
  $("#f-phone").disabled = !!S.callRef;
  S.idem = crypto.randomUUID();
  msg($("#order-result"), "");
  preview();
}

async function preview() {
  const f = $("#order-form");
  if (!f.category.value) return;
  const q = new URLSearchParams({ category: f.category.value, address: f.address.value });
  if (f.district.value) q.set("district", f.district.value);
  try {
    const r = await api(`/taxonomy/route?${q}`);
    $("#route-preview").textContent = r.department_name ? `将派往：${r.department_name}` : "";
  } catch { $("#route-preview").textContent = ""; }
}

$("#order-form").addEventListener("change", (ev) => { if (["category", "district", "address"].includes(ev.target.name)) preview(); });
$("#reset-order").onclick = () => { S.callRef = S.pop?.call_id || null; prefill(S.pop?.form || {}); };
$("#order-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  const body = { category: f.category.value, description: f.description.value.trim(), address: f.address.value.trim() };
  for (const k of ["district", "urgency", "complexity", "caller_name", "answer"]) if (f[k].value.trim()) body[k] = f[k].value.trim();
  const btn = $("#submit-order");
  btn.disabled = true;
  try {
    const headers = { "Idempotency-Key": S.idem };
    let r;
    if (S.callRef) {
      r = await api("/agents/me/order", { method: "POST", json: { ...body, call_ref: S.callRef }, headers });
    } else {
      const phone = $("#f-phone").value.trim();
      r = await api("/work-orders", { method: "POST", json: { ...body, caller_phone: phone || null }, headers });
      r = { ...r, department: r.department_name };
    }
    const repeat = r.outcome === "linked_repeat";
    msg($("#order-result"), repeat ? `该来电7天内已有同类工单 ${r.ticket}，已记为催办`
      : `已受理，工单号 ${r.ticket}${r.department ? `，派往 ${r.department}` : ""}`, "ok");
    $("#order-result").dataset.ticket = r.ticket;
    $("#wrap-code").value = "order_created";
  } catch (e) {
    msg($("#order-result"), errorText(e));
  } finally {
    btn.disabled = false;
  }
});

// ------------------------------------------------------------------ call controls and wrap-up
const post = (path, json) => api(path, { method: "POST", json });
$("#call-hold").onclick = () => call(() => post("/agents/me/call/hold"), "已保持，市民正在听等待音乐");
$("#call-unhold").onclick = () => call(() => post("/agents/me/call/unhold"), "已恢复通话");
$("#call-hangup").onclick = () => call(() => post("/agents/me/call/hangup"), "已挂断");
$("#transfer-go").onclick = () => {
  const department = $("#transfer-dept").value;
  if (!department) return toast("请先选择要转接的部门", "warn");
  return call(() => post("/agents/me/call/transfer", { department }), "正在呼叫部门，市民保持中");
};
$("#transfer-complete").onclick = () => call(() => post("/agents/me/call/transfer/complete"), "已完成转接");
$("#transfer-cancel").onclick = () => call(() => post("/agents/me/call/transfer/cancel"), "已取消转接");
$("#wrap-done").onclick = async () => {
  const json = { code: $("#wrap-code").value, end: true };
  if (S.agent?.call_id || S.callRef) json.call_id = S.agent?.call_id || S.callRef;
  const a = await call(() => post("/agents/me/wrap-up", json), "话后小结已保存");
  if (a) {
    S.callRef = null;
    showPop(null);
    showAgent(a);
    prefill({});
  }
};

// ------------------------------------------------------------------ KB and callbacks
function showKb(hits, title) {
  fill($("#kb-results"), h("h3", {}, title), hits.length ? hits.map((x) => h("div", { class: "hit" },
    h("div", { class: "t" }, x.title, " ", h("span", { class: "muted" }, x.category || "")),
    h("p", {}, x.text_answer || x.answer || x.spoken_answer))) : h("div", { class: "muted" }, "没有找到相关条目"));
}

$("#kb-search-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const q = $("#kb-q").value.trim();
  if (!q) return;
  const r = await call(() => api(`/kb/search?${new URLSearchParams({ q, limit: 5 })}`));
  if (r) showKb(r.hits, `“${q}”的搜索结果`);
});

async function refreshCallbacks() {
  try {
    const rows = await api("/agents/callbacks?status=pending&limit=20");
    fill($("#callbacks"), table([
      ["号码", (c) => c.phone], ["原因", (c) => ({ abandoned: "排队挂机", requested: "市民要求回拨" }[c.reason] || c.reason)],
      ["排队时间", (c) => fmtTime(c.queued_at)], ["尝试", (c) => `${c.attempts}/${c.max_attempts}`],
      ["状态", (c) => label("callback", c.status)],
    ], rows, { empty: "暂无待回拨" }));
  } catch (e) { msg($("#callbacks"), errorText(e)); }
}

// ------------------------------------------------------------------ start
async function init() {
  const [cats, districts, dir] = await Promise.all([
    api("/taxonomy/categories"), api("/taxonomy/districts"), api("/agents/directory").catch(() => []),
  ]);
  S.categories = cats.filter((c) => c.active);
  S.districts = districts.filter((d) => d.active);
  const f = $("#order-form");
  fill(f.category, options(S.categories.map((c) => [c.code, `${c.name}（${c.code}）`])));
  fill(f.district, options(S.districts.map((d) => [d.code, d.name]), "", "按地址自动识别"));
  fill(f.urgency, options(Object.entries(LABELS.urgency), "", "按分类默认"));
  fill(f.complexity, options(Object.entries(LABELS.complexity), "", "按分类默认"));
  fill($("#transfer-dept"), options(dir.filter((d) => d.hotline).map((d) => [d.code, `${d.name} ${d.hotline}`]), "", "选择部门热线…"));
  prefill({});
  await refreshAgent();
  try { showPop(await api("/agents/me/call")); } catch { /* no call */ }
  connect();
  refreshCallbacks();
}

init().catch((e) => toast(errorText(e), "error", 8000));
every(10000, refreshAgent);
every(15000, refreshCallbacks);
