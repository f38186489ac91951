// Validates Kubernetes objects against the Kubernetes OpenAPI schemas with
// npm's kubernetes-models (validators generated from the upstream OpenAPI
// spec: types, required fields, enums, formats).  Its validators accept
// fields the schema does not have, so a misspelt field (readinesProbe: a
// probe silently missing) is found here by walking the object along the
// package's type declarations (*.d.ts, generated from the same spec).
// Reads multi-document
// YAML from the files named (or stdin with "-"); prints one line per
// object, "ok KIND NAME" or "invalid KIND NAME: errors", and exits 1 if
// any object is invalid or of a kind it does not know.
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { parseAllDocuments } from "yaml";

const require = createRequire(import.meta.url);
const modelsDir = dirname(require.resolve("kubernetes-models/package.json"));
const nodeModules = dirname(modelsDir);
const declCache = new Map();

// The fields of the first interface in a .d.ts file: name -> declaration
// file of its object type (or null for strings, numbers, maps...).
function fieldsOf(file) {
	if (declCache.has(file)) return declCache.get(file);
	const text = readFileSync(file, "utf8");
	const imports = new Map();
	for (const m of text.matchAll(/^import \{ (\w+) \} from "([^"]+)";$/gm)) {
		const spec = m[2];
		const base = spec.startsWith(".") ? join(dirname(file), spec) : join(nodeModules, spec);
		imports.set(m[1], base.replace(/\.js$/, "") + ".d.ts");
	}
	const body = text.match(/export interface \w+(?: extends \w+)? \{([\s\S]*?)\n\}/);
	const fields = new Map();
	// One field per line at the interface's indentation; a map's type runs
	// over the lines after it ("{ [key: string]: string; }").
	for (const m of (body ? body[1] : "").matchAll(/^ {4}"([^"]+)"\??: (.*)$/gm)) {
		const t = m[2].match(/^(?:Array<)?(\w+)>?;$/);
		const decl = t && imports.has(t[1]) ? imports.get(t[1]) : null;
		fields.set(m[1], decl && existsSync(decl) ? decl : null);
	}
	const out = body ? fields : null;
	declCache.set(file, out);
	return out;
}

// Paths of fields the declarations do not have.
function unknownFields(value, file, path, out) {
	const fields = fieldsOf(file);
	if (!fields || value === null || typeof value !== "object") return out;
	if (Array.isArray(value)) {
		value.forEach((v, i) => unknownFields(v, file, `${path}[${i}]`, out));
		return out;
	}
	for (const [k, v] of Object.entries(value)) {
		if (!fields.has(k)) out.push(`${path}.${k}`);
		else if (fields.get(k)) unknownFields(v, fields.get(k), `${path}.${k}`, out);
	}
	return out;
}

function modelPath(apiVersion, kind) {
	const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
	return `${group ? `${group}/${version}` : version}/${kind}`;
}

async function modelFor(apiVersion, kind) {
	try {
		const mod = await import(`kubernetes-models/${modelPath(apiVersion, kind)}`);
		return mod[kind];
	} catch {
		return null;
	}
}

let bad = 0;
for (const arg of process.argv.slice(2)) {
	const text = readFileSync(arg === "-" ? 0 : arg, "utf8");
	for (const doc of parseAllDocuments(text)) {
		if (doc.errors.length) {
			console.log(`invalid YAML in ${arg}: ${doc.errors[0].message}`);
			bad++;
			continue;
		}
		const obj = doc.toJS();
		if (obj === null || obj === undefined) continue;
		const what = `${obj.kind} ${obj.metadata?.name ?? "(no name)"}`;
		const Model = obj.apiVersion && obj.kind ? await modelFor(obj.apiVersion, obj.kind) : null;
		if (!Model) {
			console.log(`invalid ${what}: unknown apiVersion/kind ${obj.apiVersion}/${obj.kind}`);
			bad++;
			continue;
		}
		const problems = [];
		try {
			new Model(obj).validate();
		} catch (e) {
			problems.push(e.message.replace(/\s+/g, " "));
		}
		const decl = join(modelsDir, modelPath(obj.apiVersion, obj.kind) + ".d.ts");
		if (!fieldsOf(decl)) problems.push(`no type declarations at ${decl}`);
		else
			for (const f of unknownFields(obj, decl, "", []))
				problems.push(`unknown field ${f.slice(1)}`);
		if (problems.length) {
			console.log(`invalid ${what}: ${problems.join("; ")}`);
			bad++;
		} else {
			console.log(`ok ${what}`);
		}
	}
}
process.exit(bad ? 1 : 0);
