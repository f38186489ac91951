// Validates Kubernetes objects against the Kubernetes OpenAPI schemas with
// npm's kubernetes-models (validators generated from the upstream OpenAPI
// spec: types, required fields, enums, formats).  Reads multi-document
// YAML from the files named (or stdin with "-"); prints one line per
// object, "ok KIND NAME" or "invalid KIND NAME: errors", and exits 1 if
// any object is invalid or of a kind it does not know.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

async function modelFor(apiVersion, kind) {
	const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
	const dir = group ? `${group}/${version}` : version;
	try {
		const mod = await import(`kubernetes-models/${dir}/${kind}`);
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
		try {
			new Model(obj).validate();
			console.log(`ok ${what}`);
		} catch (e) {
			console.log(`invalid ${what}: ${e.message.replace(/\s+/g, " ")}`);
			bad++;
		}
	}
}
process.exit(bad ? 1 : 0);
