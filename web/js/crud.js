// A list + edit form for simple records (taxonomy, rules, users): click a row to edit, or 新建.
// fields: {name, label, type: text|select|list|bool|password, options?: [[v, label]], create?: only on create,
//          required?, hint?}. Lists are edited as comma-separated text.
import { api, errorText } from "./api.js";
import { $, fill, h, msg, options, table, toast } from "./dom.js";

export function crud(root, cfg) {
  const { title, path, key = "code", columns, fields, updateMethod = "PUT", query = () => "" } = cfg;
  let rows = [];
  let editing = null;
  const list = h("div", { class: "scroll crud-list" });
  const form = h("form", { class: "stack crud-form", dataset: { kind: cfg.id } });
  const out = h("div");
  fill(root, h("div", { class: "row" }, h("h2", { class: "grow" }, title), cfg.toolbar || null,
    h("button", { type: "button", class: "secondary", onclick: () => edit(null) }, "新建")),
  h("div", { class: "grid crud" }, list, h("div", {}, form, out)));

  function input(f, value) {
    const id = `${cfg.id}-${f.name}`;
    let el;
    if (f.type === "select") el = h("select", { id, name: f.name }, options(f.options(), value ?? "", f.empty));
    else if (f.type === "bool") el = h("input", { id, name: f.name, type: "checkbox", checked: value ?? true });
    else el = h("input", { id, name: f.name, type: f.type === "password" ? "password" : "text",
      value: Array.isArray(value) ? value.join("，") : value ?? "", placeholder: f.hint || null });
    if (editing && f.create) el.disabled = true;
    return [h("label", { for: id }, f.label), el];
  }

  function edit(row) {
    editing = row;
    msg(out, "");
    fill(form, h("h3", {}, row ? `编辑：${row[cfg.label || key]}` : `新建${cfg.noun || ""}`),
      fields.filter((f) => !(f.updateOnly && !row)).map((f) => input(f, row ? row[f.source || f.name] : f.default)),
      h("p", {}, h("button", { type: "submit" }, row ? "保存修改" : "创建")));
  }

  function value(f) {
    const el = form.elements[f.name];
    if (f.type === "bool") return el.checked;
    const v = el.value.trim();
    if (f.type === "list") return v ? v.split(/[,，、]/).map((s) => s.trim()).filter(Boolean) : [];
    return v === "" ? (f.type === "select" && f.nullable ? null : v) : v;
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = {};
    for (const f of fields) {
      if (!form.elements[f.name] || (editing && f.create) || (!editing && f.updateOnly)) continue;
      const v = value(f);
      if (f.type === "password" && !v) continue;
      if (v === "" && !f.required) { if (!editing) continue; }
      body[f.name] = v;
    }
    try {
      const saved = editing
        ? await api(`${path}/${editing[key]}`, { method: updateMethod, json: body })
        : await api(path, { method: "POST", json: body });
      toast(editing ? "已保存" : "已创建");
      await load();
      edit(rows.find((r) => r[key] === saved[key]) || saved);
    } catch (e) {
      msg(out, errorText(e));
    }
  });

  async function load() {
    try {
      rows = await api(path + query());
      fill(list, table(columns, rows, { onclick: edit, selected: (r) => editing && r[key] === editing[key] }));
    } catch (e) {
      msg(list, errorText(e));
    }
  }

  edit(null);
  return { load, get rows() { return rows; } };
}
