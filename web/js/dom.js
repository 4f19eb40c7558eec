// Tiny DOM helpers: h() builds elements (text is always escaped), plus labels and formatting in Mandarin.
import { CONSOLES, logout, session } from "./api.js";

export function h(tag, attrs, ...children) {
  const el = tag.includes(":") ? document.createElementNS("http://www.w3.org/2000/svg", tag.split(":")[1])
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.setAttribute("class", v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "value" || k === "checked" || k === "selected") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function toast(text, kind = "ok", ms = 4000) {
  let box = $("#toasts");
  if (!box) document.body.append(box = h("div", { id: "toasts", role: "status" }));
  const m = h("div", { class: `msg ${kind}` }, text);
  box.append(m);
  setTimeout(() => m.remove(), ms);
}

export function msg(el, text, kind = "error") {
  return fill(el, text ? h("div", { class: `msg ${kind}`, role: kind === "error" ? "alert" : "status" }, text) : null);
}

export function options(pairs, selected, empty) {
  const list = empty !== undefined ? [["", empty], ...pairs] : pairs;
  return list.map(([v, label]) => h("option", { value: v, selected: v === (selected ?? "") }, label));
}

// columns: [[label, row => node|string], ...]
export function table(columns, rows, { onclick, empty = "暂无数据", selected } = {}) {
  return h("table", {},
    h("thead", {}, h("tr", {}, columns.map(([label]) => h("th", {}, label)))),
    h("tbody", {}, rows.length ? rows.map((r) => h("tr", {
      class: [onclick ? "clickable" : "", selected && selected(r) ? "selected" : ""].join(" ").trim() || null,
      onclick: onclick ? () => onclick(r) : null,
    }, columns.map(([, get]) => h("td", {}, get(r)))))
      : h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, empty))));
}

export const LABELS = {
  state: { available: "就绪", ringing: "振铃中", on_call: "通话中", wrap_up: "话后处理", paused: "小休",
    logged_out: "未签入" },
  role: { admin: "管理员", supervisor: "值班长", agent: "坐席", department: "部门用户" },
  urgency: { normal: "普通", urgent: "加急", critical: "特急" },
  complexity: { easy: "易", simple: "简", complex: "繁" },
  priority: { emergency: "紧急", urgent: "加急", normal: "普通" },
  kb: { draft: "草稿", published: "已发布", archived: "已归档" },
  speaker: { caller: "市民", bot: "机器人", agent: "坐席", system: "系统" },
  entry: { entering: "进入队列", waiting: "排队中", offered: "振铃中", connected: "通话中", held: "保持中",
    transferring: "转接中", ended: "已结束" },
  callback: { pending: "待回拨", dialing: "拨号中", connected: "已接通", done: "已完成", failed: "失败",
    cancelled: "已取消" },
};
export const label = (group, key) => LABELS[group]?.[key] ?? key ?? "";

export function badge(group, key) { return h("span", { class: `badge ${key}` }, label(group, key)); }

export function fmtTime(iso, withDate = false) {
  if (!iso) return "";
  const d = new Date(iso);
  const t = d.toLocaleTimeString("zh-CN", { hour12: false });
  return withDate ? `${d.toLocaleDateString("zh-CN")} ${t}` : t;
}

export function fmtSeconds(s) {
  if (s === null || s === undefined) return "—";
  s = Math.round(s);
  return s < 60 ? `${s}秒` : `${Math.floor(s / 60)}分${String(s % 60).padStart(2, "0")}秒`;
}

export const pct = (x) => (x === null || x === undefined ? "—" : `${(x * 100).toFixed(1)}%`);

// The shared top bar: title, the consoles this role may open, the user and 退出.
export function topbar(current, title) {
  const s = session();
  const names = { agent: "坐席工作台", supervisor: "监控大屏", admin: "管理后台" };
  const bar = h("header", { class: "topbar" },
    h("span", { class: "title" }, `青山市12345热线 · ${title}`),
    h("nav", {}, (CONSOLES[s.role] || []).map((c) =>
      h("a", { href: `/console/${c}`, class: c === current ? "active" : null }, names[c]))),
    h("span", { class: "user" },
      h("span", { id: "whoami" }, `${s.name || s.username}（${label("role", s.role)}）`),
      h("button", { id: "logout", onclick: () => logout() }, "退出")));
  document.body.prepend(bar);
  return bar;
}

// Run fn every ms while the page is visible; returns a function that runs it now.
export function every(ms, fn) {
  let busy = false;
  const run = async () => {
    if (busy || document.hidden) return;
    busy = true;
    try { await fn(); } finally { busy = false; }
  };
  setInterval(run, ms);
  return run;
}
