// 管理后台: knowledge-base editor, taxonomy and responsibility list, users and roles, audit log.
import { api, download, errorText, guard } from "./api.js";
import { $, $$, fill, fmtTime, h, label, LABELS, msg, options, table, toast, topbar } from "./dom.js";
import { crud } from "./crud.js";

await guard(["admin"]);
topbar("admin", "管理后台");

// ------------------------------------------------------------------ tabs
const loaders = {};
function showTab() {
  const tab = (location.hash || "#kb").slice(1);
  $$(".tab").forEach((s) => s.classList.toggle("hidden", s.id !== `tab-${tab}`));
  $$("#tabs a").forEach((a) => a.classList.toggle("active", a.dataset.tab === tab));
  loaders[tab]?.();
}
window.addEventListener("hashchange", showTab);

// ------------------------------------------------------------------ knowledge base
const KB = { entry: null, offset: 0, limit: 15 };
const LIST_FIELDS = ["alt_questions", "tags"];
const TEXT_FIELDS = ["title", "category", "question", "spoken_answer", "text_answer", "region"];

const pad = (n) => String(n).padStart(2, "0");
function toLocal(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
const fromLocal = (v) => (v ? new Date(v).toISOString() : null);

async function loadKbList() {
  const q = new URLSearchParams({ limit: KB.limit, offset: KB.offset });
  if ($("#kb-text").value.trim()) q.set("text", $("#kb-text").value.trim());
  if ($("#kb-status").value) q.set("status", $("#kb-status").value);
  try {
    const page = await api(`/kb/entries?${q}`);
    fill($("#kb-list"), table([
      ["编号", (e) => e.id], ["标题", (e) => e.title], ["类别", (e) => e.category], ["区域", (e) => e.region],
      ["状态", (e) => h("span", { class: `badge ${e.status}` }, label("kb", e.status))], ["版本", (e) => `v${e.version}`],
      ["更新", (e) => `${fmtTime(e.updated_at, true)} ${e.updated_by}`],
    ], page.items, { onclick: (e) => openEntry(e.id), selected: (e) => KB.entry?.id === e.id, empty: "没有符合条件的条目" }));
    const pages = Math.max(1, Math.ceil(page.total / KB.limit));
    const cur = Math.floor(KB.offset / KB.limit) + 1;
    fill($("#kb-pager"), h("span", { class: "muted" }, `共 ${page.total} 条 · 第 ${cur}/${pages} 页`),
      h("button", { class: "secondary", disabled: cur <= 1, onclick: () => { KB.offset -= KB.limit; loadKbList(); } }, "上一页"),
      h("button", { class: "secondary", disabled: cur >= pages, onclick: () => { KB.offset += KB.limit; loadKbList(); } }, "下一页"));
  } catch (e) { msg($("#kb-list"), errorText(e)); }
}

function fillEntry(e) {
  KB.entry = e;
  const f = $("#kb-form");
  f.key.value = e?.key || "";
  f.key.disabled = !!e;
  for (const k of TEXT_FIELDS) f[k].value = e ? e[k] ?? "" : (k === "region" ? "全市" : "");
  f.alt_questions.value = (e?.alt_questions || []).join("\n");
  f.tags.value = (e?.tags || []).join("，");
  f.valid_from.value = toLocal(e?.valid_from);
  f.valid_until.value = toLocal(e?.valid_until);
  $("#kb-editor-title").textContent = e ? `编辑条目 #${e.id}` : "新建条目";
  const st = $("#kb-entry-status");
  st.className = `badge ${e?.status || ""}`;
  st.textContent = e ? label("kb", e.status) : "";
  st.dataset.status = e?.status || "";
  $("#kb-entry-version").textContent = e ? `第 ${e.version} 版` : "";
  $("#kb-publish").disabled = !e || e.status !== "draft";
  $("#kb-unpublish").disabled = !e || e.status !== "published";
  $("#kb-archive").disabled = !e || e.status === "archived";
  $("#kb-reload").disabled = !e;
  fill($("#kb-version-view"));
  if (e) loadVersions(); else fill($("#kb-versions"));
}

async function openEntry(id) {
  msg($("#kb-msg"), "");
  try { fillEntry(await api(`/kb/entries/${id}`)); loadKbList(); } catch (e) { msg($("#kb-msg"), errorText(e)); }
}

function formValues() {
  const f = $("#kb-form");
  const v = {};
  for (const k of TEXT_FIELDS) v[k] = f[k].value.trim();
  v.alt_questions = f.alt_questions.value.split("\n").map((s) => s.trim()).filter(Boolean);
  v.tags = f.tags.value.split(/[,，、]/).map((s) => s.trim()).filter(Boolean);
  v.valid_from = fromLocal(f.valid_from.value);
  v.valid_until = fromLocal(f.valid_until.value);
  return v;
}

function conflictText(e) {
  if (e.status === 409 && e.body?.current_version) {
    return `保存失败：该条目已被其他管理员修改（您编辑的是第 ${KB.entry.version} 版，当前已是第 ${e.body.current_version} 版）。`
      + "您的修改未保存，请点击“重新加载”查看最新内容后再修改。";
  }
  return errorText(e);
}

$("#kb-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const v = formValues();
  try {
    if (!KB.entry) {
      const body = { key: $("#kb-form").key.value.trim(), ...v };
      for (const k of ["valid_from", "valid_until"]) if (!body[k]) delete body[k];
      fillEntry(await api("/kb/entries", { method: "POST", json: body }));
      msg($("#kb-msg"), "已创建草稿，可继续编辑或发布", "ok");
    } else {
      const e = KB.entry;
      const changed = {};
      for (const k of [...TEXT_FIELDS, ...LIST_FIELDS]) if (JSON.stringify(v[k]) !== JSON.stringify(e[k] ?? "")) changed[k] = v[k];
      for (const k of ["valid_from", "valid_until"]) if (toLocal(e[k]) !== toLocal(v[k])) changed[k] = v[k];
      if (!Object.keys(changed).length) return msg($("#kb-msg"), "没有修改", "warn");
      const saved = await api(`/kb/entries/${e.id}`, { method: "PUT", json: { version: e.version, ...changed } });
      fillEntry(saved);
      msg($("#kb-msg"), `已保存为第 ${saved.version} 版${saved.status === "published" ? "（已发布条目，修改立即生效）" : ""}`, "ok");
    }
    loadKbList();
  } catch (err) {
    msg($("#kb-msg"), conflictText(err));
  }
});

async function setStatus(action, okText) {
  const e = KB.entry;
  try {
    const method = action === "archive" ? "DELETE" : "POST";
    const path = action === "archive" ? `/kb/entries/${e.id}?version=${e.version}` : `/kb/entries/${e.id}/${action}?version=${e.version}`;
    fillEntry(await api(path, { method }));
    msg($("#kb-msg"), okText, "ok");
    loadKbList();
  } catch (err) { msg($("#kb-msg"), conflictText(err)); }
}
$("#kb-publish").onclick = () => setStatus("publish", "已发布：机器人和坐席从现在起使用该条目");
$("#kb-unpublish").onclick = () => setStatus("unpublish", "已撤回发布，条目回到草稿");
$("#kb-archive").onclick = () => { if (confirm("确定归档该条目？归档后可从历史版本恢复。")) setStatus("archive", "已归档"); };
$("#kb-reload").onclick = () => openEntry(KB.entry.id);
$("#kb-new").onclick = () => { msg($("#kb-msg"), ""); fillEntry(null); };
$("#kb-filter").addEventListener("submit", (ev) => { ev.preventDefault(); KB.offset = 0; loadKbList(); });

const ACTIONS = { create: "创建", update: "修改", publish: "发布", unpublish: "撤回发布", archive: "归档", restore: "恢复", import: "导入" };
async function loadVersions() {
  const e = KB.entry;
  try {
    const vs = await api(`/kb/entries/${e.id}/versions`);
    fill($("#kb-versions"), table([
      ["版本", (v) => `v${v.version}`], ["时间", (v) => fmtTime(v.at, true)], ["操作人", (v) => v.username],
      ["操作", (v) => ACTIONS[v.action] || v.action], ["变更字段", (v) => v.changed_fields.join("、")],
      ["", (v) => h("span", { class: "row" },
        h("button", { class: "secondary", onclick: () => viewVersion(v) }, "查看"),
        v.version !== e.version ? h("button", { class: "secondary", onclick: () => restore(v.version) }, "恢复") : null)],
    ], [...vs].reverse()));
  } catch (err) { msg($("#kb-versions"), errorText(err)); }
}

function viewVersion(v) {
  const s = v.snapshot || {};
  fill($("#kb-version-view"), h("h3", {}, `第 ${v.version} 版内容`),
    h("pre", { class: "snap" }, `标题：${s.title}\n问题：${s.question}\n口播答案：${s.spoken_answer}\n详细答案：${s.text_answer || ""}`));
}

async function restore(version) {
  if (!confirm(`把第 ${version} 版的内容恢复为新版本？`)) return;
  try {
    fillEntry(await api(`/kb/entries/${KB.entry.id}/versions/${version}/restore`, { method: "POST" }));
    msg($("#kb-msg"), `已恢复第 ${version} 版内容，保存为第 ${KB.entry.version} 版`, "ok");
    loadKbList();
  } catch (err) { msg($("#kb-msg"), errorText(err)); }
}

$("#kb-file").addEventListener("change", () => {
  $("#kb-file-name").textContent = $("#kb-file").files[0]?.name || "未选择（YAML 或 CSV）";
});
$("#kb-import").onclick = async () => {
  const file = $("#kb-file").files[0];
  if (!file) return msg($("#kb-import-report"), "请先选择 YAML 或 CSV 文件", "warn");
  const body = new FormData();
  body.append("file", file);
  try {
    const r = await api("/kb/import", { method: "POST", body });
    fill($("#kb-import-report"),
      h("div", { class: `msg ${r.rejected.length ? "warn" : "ok"}` },
        `导入完成：新增 ${r.created} 条，更新 ${r.updated} 条，未变 ${r.unchanged} 条，拒绝 ${r.rejected.length} 行`),
      r.rejected.length ? table([["行", (x) => x.row], ["标识", (x) => x.key || ""], ["原因", (x) => x.errors.join("；")]], r.rejected) : null);
    loadKbList();
  } catch (err) { msg($("#kb-import-report"), errorText(err)); }
};
$("#kb-export-yaml").onclick = () => download("/kb/export?format=yaml", "kb-export.yaml").catch((e) => toast(errorText(e), "error"));
$("#kb-export-csv").onclick = () => download("/kb/export?format=csv", "kb-export.csv").catch((e) => toast(errorText(e), "error"));

loaders.kb = () => { if (!loaders.kbDone) { loaders.kbDone = true; fillEntry(null); } loadKbList(); };

// ------------------------------------------------------------------ taxonomy and responsibility list
const TX = { categories: [], departments: [], districts: [] };
const catOpts = () => TX.categories.map((c) => [c.code, `${c.name}（${c.code}）`]);
const deptOpts = () => TX.departments.map((d) => [d.code, d.name]);
const distOpts = () => TX.districts.map((d) => [d.code, d.name]);
const yes = (v) => (v ? "启用" : "停用");

let tx = null;
async function loadTaxonomy() {
  [TX.categories, TX.departments, TX.districts] = await Promise.all(
    ["categories", "departments", "districts"].map((p) => api(`/taxonomy/${p}`)));
  if (!tx) {
    const ruleFilter = h("select", { id: "rules-filter", "aria-label": "按分类筛选", onchange: () => tx.rules.load() });
    tx = {
      categories: crud($("#tx-categories"), {
        id: "cat", title: "问题分类", noun: "分类", path: "/taxonomy/categories",
        columns: [["编码", (c) => c.code], ["名称", (c) => c.name], ["默认紧急", (c) => label("urgency", c.urgency)],
          ["难度", (c) => label("complexity", c.complexity)], ["技能", (c) => c.skill], ["状态", (c) => yes(c.active)]],
        fields: [{ name: "code", label: "编码（如 road.damage）", create: true, required: true },
          { name: "name", label: "名称", required: true },
          { name: "urgency", label: "默认紧急程度", type: "select", options: () => Object.entries(LABELS.urgency) },
          { name: "complexity", label: "办理难度", type: "select", options: () => Object.entries(LABELS.complexity) },
          { name: "skill", label: "坐席技能" }, { name: "keywords", label: "关键词（逗号分隔）", type: "list" },
          { name: "active", label: "启用", type: "bool" }],
      }),
      rules: crud($("#tx-rules"), {
        id: "rule", title: "权责清单（分类 × 区县 × 关键词 → 责任部门）", noun: "规则", path: "/taxonomy/rules", key: "id",
        label: "id", toolbar: ruleFilter,
        query: () => (ruleFilter.value ? `?category=${encodeURIComponent(ruleFilter.value)}` : ""),
        columns: [["#", (r) => r.id], ["分类", (r) => TX.categories.find((c) => c.code === r.category_code)?.name || r.category_code],
          ["区县", (r) => TX.districts.find((d) => d.code === r.district_code)?.name || "全市"], ["关键词", (r) => r.keyword || ""],
          ["责任部门", (r) => TX.departments.find((d) => d.code === r.department_code)?.name || r.department_code],
          ["状态", (r) => yes(r.active)]],
        fields: [{ name: "category", source: "category_code", label: "分类", type: "select", options: catOpts, create: true },
          { name: "district", source: "district_code", label: "区县", type: "select", options: distOpts, empty: "全市（不限区县）", nullable: true, create: true },
          { name: "keyword", label: "关键词（可选）", create: true },
          { name: "department", source: "department_code", label: "责任部门", type: "select", options: deptOpts },
          { name: "active", label: "启用", type: "bool" }],
      }),
      departments: crud($("#tx-departments"), {
        id: "dept", title: "责任部门", noun: "部门", path: "/taxonomy/departments",
        columns: [["编码", (d) => d.code], ["名称", (d) => d.name], ["热线", (d) => d.hotline], ["状态", (d) => yes(d.active)]],
        fields: [{ name: "code", label: "编码", create: true, required: true }, { name: "name", label: "名称", required: true },
          { name: "hotline", label: "部门热线（转接用）" }, { name: "skill", label: "对应坐席技能" },
          { name: "active", label: "启用", type: "bool" }],
      }),
      districts: crud($("#tx-districts"), {
        id: "dist", title: "区县", noun: "区县", path: "/taxonomy/districts",
        columns: [["编码", (d) => d.code], ["名称", (d) => d.name], ["街道", (d) => (d.streets || []).slice(0, 4).join("、")],
          ["状态", (d) => yes(d.active)]],
        fields: [{ name: "code", label: "编码", create: true, required: true }, { name: "name", label: "名称", required: true },
          { name: "streets", label: "街道/乡镇（逗号分隔）", type: "list" }, { name: "roads", label: "道路", type: "list" },
          { name: "landmarks", label: "地标", type: "list" }, { name: "active", label: "启用", type: "bool" }],
      }),
    };
    fill(ruleFilter, options(catOpts(), "", "全部分类"));
    fill($("#route-category"), options(catOpts()));
  }
  await Promise.all(Object.values(tx).map((c) => c.load()));
}
$("#route-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const q = new URLSearchParams({ category: $("#route-category").value, address: $("#route-address").value, text: $("#route-text").value });
  try {
    const r = await api(`/taxonomy/route?${q}`);
    const levels = { "category+district+keyword": "分类+区县+关键词", "category+district": "分类+区县", "category+keyword": "分类+关键词",
      category: "仅分类", district_office: "兜底：属地街道办", none: "无匹配" };
    msg($("#route-out"), `派往：${r.department_name || "（无）"} · 区县：${TX.districts.find((d) => d.code === r.district_code)?.name || "未识别"} · 命中规则：${r.rule_id ?? "—"}（${levels[r.level] || r.level}）`, "ok");
  } catch (e) { msg($("#route-out"), errorText(e)); }
});
loaders.taxonomy = () => loadTaxonomy().catch((e) => toast(errorText(e), "error"));

// ------------------------------------------------------------------ users and roles
let users = null;
loaders.users = async () => {
  try {
    if (!TX.departments.length) TX.departments = await api("/taxonomy/departments");
  } catch (e) { toast(errorText(e), "error"); }
  users ??= crud($("#users"), {
    id: "user", title: "用户与角色", noun: "用户", path: "/users", key: "id", label: "username", updateMethod: "PATCH",
    columns: [["#", (u) => u.id], ["用户名", (u) => u.username], ["姓名", (u) => u.display_name], ["角色", (u) => label("role", u.role)],
      ["部门", (u) => u.department_code || ""], ["话机", (u) => u.sip_endpoint || ""], ["技能", (u) => u.skills.join("、")],
      ["状态", (u) => (u.is_active ? "正常" : "停用")]],
    fields: [{ name: "username", label: "用户名（字母数字）", create: true, required: true },
      { name: "password", label: "密码（至少8位；修改时留空表示不变）", type: "password" },
      { name: "role", label: "角色", type: "select", options: () => Object.entries(LABELS.role) },
      { name: "display_name", label: "姓名" },
      { name: "department_code", label: "所属部门（部门用户必填）", type: "select", options: deptOpts, empty: "无", nullable: true },
      { name: "sip_endpoint", label: "坐席话机（如 PJSIP/agent1）" },
      { name: "skills", label: "技能（逗号分隔，可带等级，如 综合:3）", type: "list" },
      { name: "is_active", label: "启用", type: "bool", updateOnly: true }],
  });
  await users.load();
};

// ------------------------------------------------------------------ audit log
loaders.audit = async () => {
  try {
    const rows = await api("/audit?limit=100");
    fill($("#audit"), table([["时间", (r) => fmtTime(r.at, true)], ["用户", (r) => r.username], ["操作", (r) => r.action],
      ["对象", (r) => `${r.object_type} ${r.object_id ?? ""}`], ["详情", (r) => JSON.stringify(r.detail)]], rows));
  } catch (e) { msg($("#audit"), errorText(e)); }
};

showTab();
