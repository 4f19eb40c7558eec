// 监控大屏: queues, agents by state, calls in progress, today's KPIs, overdue/escalated orders, hotspots.
// Live parts refresh every 5 s and at once on a supervisor websocket event; charts every 30 s.
import { api, errorText, guard, wsUrl } from "./api.js";
import { $, badge, every, fill, fmtSeconds, fmtTime, h, label, LABELS, msg, pct, table, topbar } from "./dom.js";
import { columns, hbars } from "./charts.js";

await guard(["supervisor", "admin"]);
topbar("supervisor", "监控大屏");

const pad = (n) => String(n).padStart(2, "0");
const day = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
const daysAgo = (n) => { const d = new Date(); d.setDate(d.getDate() - n); return d; };
const today = () => day(new Date());

function card(id, k, v, hint) {
  return h("div", { class: "card", id, title: hint || null }, h("div", { class: "v", dataset: { value: v ?? "" } }, v ?? "—"),
    h("div", { class: "k" }, k));
}

let lastOrders = null;
async function refreshKpis() {
  const q = `from=${today()}&to=${today()}`;
  const [k, c] = await Promise.all([api(`/stats/kpis?${q}`), api(`/stats/calls?${q}`).catch(() => null)]);
  const t = k.total;
  const ct = c?.total;
  if (lastOrders !== null && t.orders !== lastOrders) setTimeout(() => charts(), 0);  // new orders: redraw hotspots
  lastOrders = t.orders;
  fill($("#kpi-cards"),
    card("kpi-orders", "今日受理工单", t.orders), card("kpi-resolved", "已办结", t.resolved),
    card("kpi-completion", "办结率", pct(t.completion_rate)), card("kpi-response", "按时签收率", pct(t.response_rate)),
    card("kpi-ontime", "按时办结率", pct(t.on_time_rate)), card("kpi-return", "退单率", pct(t.return_rate)),
    card("kpi-satisfaction", "满意率", pct(t.satisfaction_rate)), card("kpi-repeat", "重复来电率", pct(t.repeat_call_rate)),
    card("kpi-containment", "机器人自助率", pct(t.bot_containment_rate)),
    ct ? [card("calls-offered", "今日来电", ct.offered), card("calls-answered", "人工接听", ct.answered),
      card("calls-abandon", "放弃率", pct(ct.abandon_rate)), card("calls-asa", "平均应答", fmtSeconds(ct.average_speed_of_answer_s)),
      card("calls-sl", "服务水平(20秒)", pct(ct.service_level)), card("calls-aht", "平均通话", fmtSeconds(ct.average_handle_s))] : null);
}

async function refreshSeats() {
  const s = await api("/seats");
  const waiting = s.queues.reduce((n, q) => n + q.waiting, 0);
  const qw = $("#queue-waiting");
  qw.dataset.count = waiting;
  qw.textContent = `${waiting} 人排队`;
  qw.className = `badge ${waiting ? "warn" : "ok"}`;
  fill($("#queues"), table([
    ["队列", (q) => q.queue], ["排队", (q) => q.waiting], ["最长等待", (q) => fmtSeconds(q.longest_wait_seconds)],
    ["来电", (q) => q.entries.slice(0, 5).map((e) => h("div", {}, `${e.position}. ${e.caller} `, badge("priority", e.priority),
      ` ${fmtSeconds(e.waited_seconds)}`))],
  ], s.queues, { empty: "当前无人排队" }));
  const states = Object.keys(LABELS.state).filter((k) => k !== "logged_out");
  fill($("#agent-counts"), states.map((st) => card(`agents-${st}`, label("state", st), (s.agents_by_state[st] || []).length)));
  const agents = states.flatMap((st) => s.agents_by_state[st] || []);
  fill($("#agents"), table([
    ["坐席", (a) => a.name || a.username], ["状态", (a) => [badge("state", a.state), a.reason ? ` ${a.reason}` : ""]],
    ["持续", (a) => fmtSeconds((Date.now() - new Date(a.since)) / 1000)], ["技能", (a) => Object.keys(a.skills).join("、")],
  ], agents, { empty: "没有已签入的坐席" }));
  $("#calls-count").textContent = `${s.calls_in_progress.length} 通`;
  fill($("#calls"), table([
    ["来电", (e) => e.caller], ["状态", (e) => label("entry", e.state)], ["坐席", (e) => agents.find((a) => a.id === e.agent_id)?.name || ""],
    ["等待", (e) => fmtSeconds(e.waited_seconds)],
  ], s.calls_in_progress, { empty: "无" }));
}

const orderCols = [["工单号", (o) => o.ticket], ["分类", (o) => o.category_name || o.category_code],
  ["部门", (o) => o.department_name || ""], ["状态", (o) => o.status_label || o.status],
  ["紧急", (o) => label("urgency", o.urgency)], ["办结时限", (o) => fmtTime(o.resolution_due, true)]];

async function refreshOrders() {
  const [over, esc] = await Promise.all([api("/work-orders?overdue=true&limit=20"), api("/work-orders?escalation_level=1&limit=20")]);
  $("#overdue-count").textContent = `${over.total} 件`;
  fill($("#overdue"), table(orderCols, over.items, { empty: "没有超期工单" }));
  $("#escalated-count").textContent = `${esc.total} 件`;
  fill($("#escalated"), table([["工单号", (o) => o.ticket], ["级别", (o) => ["", "一级催办", "二级督察", "三级领导督办"][o.escalation_level]],
    ["部门", (o) => o.department_name || ""]], esc.items, { empty: "没有升级督办的工单" }));
}

async function refreshCharts() {
  const range = `from=${day(daysAgo(6))}&to=${today()}`;
  const [cat, dist] = await Promise.all([api(`/stats/kpis?${range}&group_by=category`), api(`/stats/kpis?${range}&group_by=district`)]);
  const top = (g) => g.filter((x) => x.orders).sort((a, b) => b.orders - a.orders).slice(0, 8)
    .map((x) => ({ label: x.name || x.key || "未识别", value: x.orders }));
  fill($("#chart-category"), hbars(top(cat.groups)));
  fill($("#chart-district"), hbars(top(dist.groups)));
  const days = [...Array(7).keys()].reverse().map(daysAgo);
  const [orders, calls] = await Promise.all([
    Promise.all(days.map((d) => api(`/stats/kpis?from=${day(d)}&to=${day(d)}`).then((r) => r.total.orders))),
    api(`/stats/calls?${range}&bucket=day`).catch(() => null),
  ]);
  const offered = (d) => calls?.buckets.find((b) => day(new Date(b.start)) === day(d))?.offered ?? 0;
  fill($("#chart-trend"), columns(days.map((d, i) => ({ label: `${d.getMonth() + 1}/${d.getDate()}`, values: [orders[i], offered(d)] })),
    ["工单", "来电"]));
}

function guarded(fn, where) {
  return async () => {
    try { await fn(); $("#updated-at").textContent = `更新于 ${fmtTime(new Date().toISOString())}`; } catch (e) { msg($(where), errorText(e)); }
  };
}

const live = every(5000, async () => {
  await Promise.all([guarded(refreshSeats, "#queues")(), guarded(refreshKpis, "#kpi-cards")(), guarded(refreshOrders, "#overdue")()]);
});
const charts = every(30000, guarded(refreshCharts, "#chart-category"));
live();
charts();

// Any queue/agent event: refresh the live part at once (debounced).
let timer = null;
let backoff = 1000;
let ws = null;
setInterval(() => { if (ws?.readyState === WebSocket.OPEN) ws.send("ping"); }, 20000);
function connect() {
  ws = new WebSocket(wsUrl("/seats/ws"));
  const st = $("#ws-status");
  ws.onopen = () => { st.textContent = "推送已连接"; st.className = "badge ok"; backoff = 1000; };
  ws.onmessage = () => { clearTimeout(timer); timer = setTimeout(live, 300); };
  ws.onclose = () => { st.textContent = "推送重连中"; st.className = "badge warn"; setTimeout(connect, backoff); backoff = Math.min(backoff * 2, 15000); };
}
connect();
