/**
 * Sysmon events as Winlogbeat ships them when no ingest pipeline has run (a file or Logstash output,
 * or Winlogbeat 8, whose Sysmon mapping lives in Elasticsearch's pipeline): the event's own fields sit
 * under `winlog.event_data` as strings, and none of the ECS fields the ECS adapter reads are set.
 * Read as they are, every connection was rejected for want of a destination.
 *
 * sysmonEcsView gives such a document the fields the `windows` integration's pipeline would set
 * (elastic/integrations: packages/windows/data_stream/sysmon_operational/elasticsearch/ingest_pipeline/default.yml),
 * for the events that matter to egress:
 *   1  process creation: process.entity_id (ProcessGuid), executable (Image), pid (ProcessId),
 *      hash.sha256 (the SHA256 entry of Hashes, "SHA1=…,MD5=…,SHA256=…"), and the parent's
 *      entity_id, executable and pid: a later connection of the process finds its hash and parents
 *      through its ProcessGuid, as Elastic Defend's do (ecs-processes.ts);
 *   3  network connection: destination.ip, .port, .domain (DestinationHostname, Sysmon's reverse
 *      lookup, which the adapter trusts only when it is a risky destination), network.transport
 *      (Protocol), network.direction (Initiated "true": egress, "false": ingress), the process;
 *   22 DNS query: dns.question.name (QueryName), dns.resolved_ip (the addresses among QueryResults;
 *      its "type:  5 name" entries are CNAMEs, not addresses), the process.
 * @timestamp becomes the event's own time, UtcTime, as the pipeline does; a UtcTime in another
 * form leaves @timestamp as it was. Values the pipeline drops ("", "-", the zero GUID) are absent.
 * Malformed values (a port that is no number, an address that is none) are passed on as they are,
 * so the adapter rejects the record naming the ECS field (destination.port, destination.ip).
 * Every other event id is marked as neither network nor process, so it is skipped as not network.
 */
import { isObject, type Obj } from './validate.js';

const SYSMON_PROVIDER = 'Microsoft-Windows-Sysmon';
/** What the pipeline drops from event_data before mapping anything. */
const DROPPED = new Set(['', '-', '{00000000-0000-0000-0000-000000000000}']);
const UTC_TIME = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{3})$/;
const DIGITS = /^\d{1,10}$/;
/** The pipeline's rewrite of an IPv4-mapped answer, brackets and port included. */
const MAPPED_V4 = /^\[?::ffff:(\d+\.\d+\.\d+\.\d+)(?:\](?::\d+)?)?$/i;

/**
 * The ECS view of a raw Sysmon document, or null when `doc` is not one: not from Sysmon, no
 * `winlog.event_data`, or already mapped (it has `event.category`, which the pipeline always sets
 * for the events read here).
 */
export function sysmonEcsView(doc: Obj): Obj | null {
  const winlog = doc.winlog;
  if (!isObject(winlog) || !isObject(winlog.event_data)) return null;
  const event = isObject(doc.event) ? doc.event : {};
  if (event.category !== undefined || doc['event.category'] !== undefined) return null;
  const provider = winlog.provider_name ?? event.provider;
  if (provider !== SYSMON_PROVIDER) return null;
  const rawCode = winlog.event_id ?? event.code;
  const code = typeof rawCode === 'number' ? String(rawCode) : typeof rawCode === 'string' ? rawCode.trim() : '';
  const data = winlog.event_data;
  const get = (k: string): string | undefined => {
    const v = data[k];
    return typeof v === 'string' && !DROPPED.has(v) ? v : undefined;
  };
  const view: Obj = { ...doc };
  const time = UTC_TIME.exec(get('UtcTime') ?? '');
  if (time) view['@timestamp'] = `${time[1]}T${time[2]}Z`;
  const category = code === '1' ? 'process' : code === '3' || code === '22' ? 'network' : `sysmon-event-${code || 'unknown'}`;
  view.event = { ...event, code, provider: SYSMON_PROVIDER, category: [category] };
  if (code !== '1' && code !== '3' && code !== '22') return view;

  const process: Obj = {};
  setIf(process, 'entity_id', get('ProcessGuid'));
  setIf(process, 'executable', get('Image'));
  setIf(process, 'pid', asNumber(get('ProcessId')));
  if (code === '1') {
    setIf(process, 'hash', sha256Of(get('Hashes') ?? get('Hash')));
    const parent: Obj = {};
    setIf(parent, 'entity_id', get('ParentProcessGuid'));
    setIf(parent, 'executable', get('ParentImage'));
    setIf(parent, 'pid', asNumber(get('ParentProcessId')));
    if (Object.keys(parent).length > 0) process.parent = parent;
  }
  view.process = process;

  if (code === '3') {
    const destination: Obj = {};
    setIf(destination, 'ip', get('DestinationIp'));
    setIf(destination, 'domain', get('DestinationHostname'));
    const port = get('DestinationPort');
    setIf(destination, 'port', asNumber(port) ?? port);
    view.destination = destination;
    const network: Obj = {};
    setIf(network, 'transport', get('Protocol'));
    const initiated = get('Initiated');
    setIf(network, 'direction', initiated === 'true' ? 'egress' : initiated === 'false' ? 'ingress' : undefined);
    view.network = network;
  } else if (code === '22') {
    const dns: Obj = {};
    const name = get('QueryName');
    if (name !== undefined) dns.question = { name };
    const ips = answersOf(get('QueryResults'));
    if (ips.length > 0) dns.resolved_ip = ips;
    view.dns = dns;
  }
  return view;
}

function setIf(o: Obj, key: string, value: unknown): void {
  if (value !== undefined) o[key] = value;
}

function asNumber(s: string | undefined): number | undefined {
  return s !== undefined && DIGITS.test(s) ? Number(s) : undefined;
}

/** `{sha256}` from a Hashes list ("SHA1=…,MD5=…,SHA256=…,IMPHASH=…"); an all-zero value is none. */
function sha256Of(hashes: string | undefined): Obj | undefined {
  if (hashes === undefined) return undefined;
  for (const entry of hashes.split(',')) {
    const eq = entry.indexOf('=');
    if (eq < 0 || entry.slice(0, eq).trim().toLowerCase() !== 'sha256') continue;
    const value = entry.slice(eq + 1).trim().toLowerCase();
    return value === '' || /^0*$/.test(value) ? undefined : { sha256: value };
  }
  return undefined;
}

/** The addresses among QueryResults ("type:  5 cname;::ffff:1.2.3.4;2001:db8::1;"). */
function answersOf(results: string | undefined): string[] {
  if (results === undefined) return [];
  const out: string[] = [];
  for (const part of results.split(';')) {
    const answer = part.trim();
    if (answer === '' || answer.startsWith('type:')) continue;
    out.push(MAPPED_V4.exec(answer)?.[1] ?? answer);
  }
  return out;
}
