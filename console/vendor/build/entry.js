// The editor pieces the console uses, bundled into one script (../editor.js)
// that sets the global `SluiceEditor`.
export { EditorView, keymap } from "@codemirror/view";
export { EditorState, Prec, Compartment } from "@codemirror/state";
export { basicSetup } from "codemirror";
export { sql, PostgreSQL, SQLDialect } from "@codemirror/lang-sql";
export { autocompletion, completeFromList } from "@codemirror/autocomplete";
export { setDiagnostics } from "@codemirror/lint";
export { oneDark } from "@codemirror/theme-one-dark";
