// Writes ../LICENSES.txt: the licence of every package bundled into the
// console's vendor files, as each package ships it.
const fs = require("fs");
const path = require("path");
const lock = require("./package-lock.json");
let out = "Third-party code in the sluice console (console/vendor), with its licences.\n";
for (const [where, meta] of Object.entries(lock.packages)) {
  if (!where || meta.dev) continue;
  const dir = path.join(__dirname, where);
  const pkg = require(path.join(dir, "package.json"));
  const file = fs.readdirSync(dir).find((f) => /^licen[cs]e/i.test(f));
  out += `\n==== ${pkg.name} ${pkg.version} (${pkg.license}) ====\n`;
  out += file ? fs.readFileSync(path.join(dir, file), "utf8") : `${pkg.license}\n`;
}
fs.writeFileSync(path.join(__dirname, "..", "LICENSES.txt"), out);
