// validate.mjs FILE.yaml... - check Kubernetes manifests the way an API
// server would, plus Freightliner's own rules for them:
//
//  1. every file parses as YAML (all documents, no warnings);
//  2. every object validates against the Kubernetes OpenAPI schema of its
//     apiVersion/kind (kubernetes-models: wrong types, enums, quantities,
//     missing required fields; it does not reject unknown fields, which
//     `kubectl apply --validate=strict` would);
//  3. the rules of deploy/kubernetes: every pod runs as non-root with a
//     read-only root file system, no privilege escalation, all capabilities
//     dropped, memory requests and limits; every ConfigMap, Secret (and
//     key), volume and port a pod names exists; the Indexed Job's
//     completions = parallelism = --shard-count; the serve probes are on
//     /healthz and /readyz; the Service selects the Deployment's pods; the
//     sync file's password_file paths are mounted from a Secret and its
//     password_env variables are set from one.
//
// With --self-test, each file is also broken in ways the checks must
// catch, and the run fails if one goes unnoticed (a check that cannot fail
// is not a check). Prints one line per object; exit 0 when all pass.
// With --dump, prints the parsed objects as JSON instead.
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { parseAllDocuments, parse as parseYaml } from "yaml";

const args = process.argv.slice(2);
const selfTest = args[0] === "--self-test";
const dump = args[0] === "--dump"; // print the objects as JSON (for run_manifests.py)
const files = selfTest || dump ? args.slice(1) : args;

async function schemaErrors(obj) {
  const [group, version] = obj.apiVersion.includes("/")
    ? obj.apiVersion.split("/")
    : [null, obj.apiVersion];
  const path = group
    ? `kubernetes-models/${group}/${version}/${obj.kind}`
    : `kubernetes-models/${version}/${obj.kind}`;
  let mod;
  try {
    mod = await import(path);
  } catch (e) {
    return [`unknown apiVersion/kind ${obj.apiVersion} ${obj.kind} (${path})`];
  }
  const Model = mod[obj.kind] || mod.default;
  try {
    new Model(obj).validate();
    return [];
  } catch (e) {
    const list = e.errors || e.details || [];
    if (list.length)
      return list.map((x) => `${x.instancePath || x.path || ""} ${x.message}`.trim());
    return [String(e.message || e)];
  }
}

// Pod templates of an object: [{ where, spec, labels }].
function podTemplates(obj) {
  const t =
    obj.kind === "CronJob" ? obj.spec?.jobTemplate?.spec?.template
      : ["Job", "Deployment", "StatefulSet", "DaemonSet"].includes(obj.kind) ? obj.spec?.template
        : null;
  return t ? [{ spec: t.spec || {}, labels: t.metadata?.labels || {} }] : [];
}

function ruleErrors(obj, all) {
  const errs = [];
  const named = (kind, name) => all.find((o) => o.kind === kind && o.metadata?.name === name);
  for (const { spec: pod, labels } of podTemplates(obj)) {
    if (pod.securityContext?.runAsNonRoot !== true) errs.push("pod securityContext.runAsNonRoot is not true");
    const volumes = new Map((pod.volumes || []).map((v) => [v.name, v]));
    for (const v of volumes.values()) {
      if (v.configMap && !named("ConfigMap", v.configMap.name))
        errs.push(`volume ${v.name}: no ConfigMap ${v.configMap.name}`);
      if (v.secret) {
        const s = named("Secret", v.secret.secretName);
        if (!s) errs.push(`volume ${v.name}: no Secret ${v.secret.secretName}`);
        for (const it of v.secret.items || [])
          if (s && !({ ...s.data, ...s.stringData })[it.key])
            errs.push(`volume ${v.name}: Secret ${s.metadata.name} has no key ${it.key}`);
      }
    }
    for (const c of pod.containers || []) {
      const sc = c.securityContext || {};
      const where = `container ${c.name}`;
      if (sc.runAsNonRoot !== true) errs.push(`${where}: runAsNonRoot is not true`);
      if (sc.readOnlyRootFilesystem !== true) errs.push(`${where}: readOnlyRootFilesystem is not true`);
      if (sc.allowPrivilegeEscalation !== false) errs.push(`${where}: allowPrivilegeEscalation is not false`);
      if (!(sc.capabilities?.drop || []).includes("ALL")) errs.push(`${where}: capabilities do not drop ALL`);
      if (sc.privileged) errs.push(`${where}: privileged`);
      if (!c.resources?.requests?.memory || !c.resources?.limits?.memory)
        errs.push(`${where}: memory requests and limits are required`);
      for (const m of c.volumeMounts || [])
        if (!volumes.has(m.name)) errs.push(`${where}: mount ${m.name} has no volume`);
      const env = new Map((c.env || []).map((e) => [e.name, e]));
      for (const e of env.values()) {
        const ref = e.valueFrom?.secretKeyRef;
        if (!ref) continue;
        const s = named("Secret", ref.name);
        if (!s) errs.push(`${where}: env ${e.name}: no Secret ${ref.name}`);
        else if (!({ ...s.data, ...s.stringData })[ref.key])
          errs.push(`${where}: env ${e.name}: Secret ${ref.name} has no key ${ref.key}`);
      }
      const ports = new Set((c.ports || []).map((p) => p.name));
      for (const [probe, path] of [["livenessProbe", "/healthz"], ["readinessProbe", "/readyz"]]) {
        const p = c[probe];
        if (!p && !c.args?.includes("serve")) continue;
        if (!p) { errs.push(`${where}: serve needs a ${probe} on ${path}`); continue; }
        if (p.httpGet?.path !== path) errs.push(`${where}: ${probe} is not on ${path}`);
        if (typeof p.httpGet?.port === "string" && !ports.has(p.httpGet.port))
          errs.push(`${where}: ${probe} port ${p.httpGet.port} is not a container port`);
      }
      // The sync file: its secrets must reach this container.
      const cfg = c.volumeMounts?.map((m) => [m, volumes.get(m.name)]).find(([, v]) => v?.configMap);
      const cm = cfg && named("ConfigMap", cfg[1].configMap.name);
      const syncText = cm?.data?.["sync.yaml"];
      if (syncText) {
        const sync = parseYaml(syncText);
        for (const [rname, r] of Object.entries(sync.registries || {})) {
          const cred = r.credentials || {};
          if (cred.password_env && !env.has(cred.password_env))
            errs.push(`${where}: registry ${rname}: password_env ${cred.password_env} is not set`);
          if (cred.password_file) {
            const ok = (c.volumeMounts || []).some((m) => {
              const v = volumes.get(m.name);
              return v?.secret && (v.secret.items || []).some((it) => `${m.mountPath}/${it.path}` === cred.password_file);
            });
            if (!ok) errs.push(`${where}: registry ${rname}: password_file ${cred.password_file} is not a mounted Secret key`);
          }
        }
      }
      if (obj.kind === "Job" && obj.spec.completionMode === "Indexed") {
        const i = (c.args || []).indexOf("--shard-count");
        const n = i >= 0 ? Number(c.args[i + 1]) : NaN;
        if (!(n === obj.spec.completions && n === obj.spec.parallelism))
          errs.push(`${where}: --shard-count ${n}, completions ${obj.spec.completions}, parallelism ${obj.spec.parallelism} differ`);
      }
    }
    if (obj.kind === "Deployment") {
      const sel = obj.spec.selector?.matchLabels || {};
      for (const [k, v] of Object.entries(sel))
        if (labels[k] !== v) errs.push(`selector ${k}=${v} does not match the pod labels`);
      const svc = all.filter((o) => o.kind === "Service" &&
        Object.entries(o.spec?.selector || {}).every(([k, v]) => labels[k] === v));
      if (!svc.length) errs.push("no Service selects this Deployment's pods");
      const ports = new Set(pod.containers.flatMap((c) => (c.ports || []).map((p) => p.name)));
      for (const s of svc)
        for (const p of s.spec.ports || [])
          if (typeof p.targetPort === "string" && !ports.has(p.targetPort))
            errs.push(`Service ${s.metadata.name}: targetPort ${p.targetPort} is not a container port`);
    }
  }
  return errs;
}

async function check(objects) {
  const results = [];
  for (const o of objects) {
    const errs = [...(await schemaErrors(o.obj)), ...ruleErrors(o.obj, objects.map((x) => x.obj))];
    results.push({ ...o, errs });
  }
  return results;
}

const objects = [];
let failed = 0;
for (const f of files) {
  const docs = parseAllDocuments(readFileSync(f, "utf8"), { prettyErrors: true });
  for (const d of docs) {
    if (d.errors.length || d.warnings.length) {
      for (const e of [...d.errors, ...d.warnings]) console.log(`FAIL ${f}: YAML: ${e.message}`);
      failed++;
      continue;
    }
    const obj = d.toJS();
    if (obj === null) continue;
    if (!obj.apiVersion || !obj.kind) {
      console.log(`FAIL ${f}: not a Kubernetes object (no apiVersion/kind)`);
      failed++;
      continue;
    }
    objects.push({ file: basename(f), obj });
  }
}

if (dump) {
  console.log(JSON.stringify(objects));
  process.exit(failed ? 1 : 0);
}

for (const r of await check(objects)) {
  const name = `${r.file}: ${r.obj.kind} ${r.obj.metadata?.name}`;
  if (r.errs.length) {
    failed++;
    for (const e of r.errs) console.log(`FAIL ${name}: ${e}`);
  } else {
    console.log(`ok   ${name} (${r.obj.apiVersion})`);
  }
}

if (selfTest) {
  // Each mutation breaks one object; the checks must reject it.
  const clone = (x) => JSON.parse(JSON.stringify(x));
  const first = (kind) => objects.find((o) => o.obj.kind === kind);
  const podOf = (o) => podTemplates(o)[0].spec;
  const mutations = [
    ["CronJob", "schedule is a number", (o) => { o.spec.schedule = 5; }],
    ["CronJob", "an invalid enum (imagePullPolicy)", (o) => { podOf(o).containers[0].imagePullPolicy = "Sometimes"; }],
    ["CronJob", "a required field missing (containers[0].name)", (o) => { delete podOf(o).containers[0].name; }],
    ["CronJob", "readOnlyRootFilesystem false", (o) => { podOf(o).containers[0].securityContext.readOnlyRootFilesystem = false; }],
    ["CronJob", "capabilities not dropped", (o) => { podOf(o).containers[0].securityContext.capabilities = {}; }],
    ["CronJob", "no memory limit", (o) => { delete podOf(o).containers[0].resources.limits.memory; }],
    ["CronJob", "a Secret key that does not exist", (o) => { podOf(o).containers[0].env[0].valueFrom.secretKeyRef.key = "nope"; }],
    ["Job", "shard count differs from completions", (o) => { o.spec.completions = 3; }],
    ["Job", "resources.limits.memory is not a quantity", (o) => { podOf(o).containers[0].resources.limits.memory = "lots"; }],
    ["Deployment", "readiness probe on the wrong path", (o) => { podOf(o).containers[0].readinessProbe.httpGet.path = "/"; }],
    ["Deployment", "replicas is a string", (o) => { o.spec.replicas = "one"; }],
    ["Deployment", "runAsNonRoot off", (o) => { podOf(o).securityContext.runAsNonRoot = false; }],
    ["Service", "a selector that matches no pod", (o) => { o.spec.selector["app.kubernetes.io/component"] = "x"; }],
    ["Service", "a targetPort the container does not have", (o) => { o.spec.ports[0].targetPort = "metrics"; }],
    ["ConfigMap", "password_env not set in the pods", (o) => { o.data["sync.yaml"] = o.data["sync.yaml"].replace("MIRROR_PASSWORD", "OTHER_PASSWORD"); }],
  ];
  for (const [kind, what, mutate] of mutations) {
    const target = first(kind);
    if (!target) { console.log(`FAIL self-test: no ${kind} to break`); failed++; continue; }
    const broken = objects.map((o) => (o === target ? { ...o, obj: clone(o.obj) } : o));
    mutate(broken.find((o) => o.file === target.file && o.obj.kind === kind).obj);
    const caught = (await check(broken)).some((r) => r.errs.length);
    if (caught) console.log(`ok   self-test: ${kind} with ${what} is rejected`);
    else { console.log(`FAIL self-test: ${kind} with ${what} passed the checks`); failed++; }
  }
  const dup = parseAllDocuments("a: 1\na: 2\n")[0];
  if (dup.errors.length) console.log("ok   self-test: YAML with a duplicate key is rejected");
  else { console.log("FAIL self-test: YAML with a duplicate key parsed"); failed++; }
}

console.log(failed ? `validate: ${failed} failure(s)` : `validate: ${objects.length} objects ok`);
process.exit(failed ? 1 : 0);
