// Offline guard for the Node real client (the counterpart of common.py's audit hook): every TCP
// connection and DNS lookup to anything but loopback throws, and says so on stderr. Import it first.
//
// Covers every socket Node opens from JavaScript: `net.Socket.prototype.connect` is where
// net/tls/http/http2 (grpc-js) and the bundled undici behind global `fetch` all end up, and
// `dns.lookup` / `dns.promises.lookup` catch name resolution (a non-loopback name is refused before
// it is resolved). Unix-socket paths are local and allowed.
import dns from "node:dns";
import net from "node:net";

function allowed(host) {
  if (host === undefined || host === null || host === "" || host === "localhost") return true;
  const h = String(host).replace(/^\[|\]$/g, "").split("%")[0];
  if (net.isIPv4(h)) return h.startsWith("127.");
  if (net.isIPv6(h)) return h === "::1" || /^::ffff:127\./i.test(h) || h === "0:0:0:0:0:0:0:1";
  return false;
}

function refuse(what, host) {
  process.stderr.write(`promptlog guard_network: blocked ${what} to ${JSON.stringify(host)}\n`);
  return new Error(`promptlog: network access to ${JSON.stringify(host)} blocked (offline test client)`);
}

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function guardedConnect(...args) {
  // net.connect() passes its normalised [options, callback] array as the only argument.
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  let host;
  if (first !== null && typeof first === "object") {
    host = first.path ? undefined : (first.host ?? "localhost");
  } else if (typeof first === "number" || /^\d+$/.test(String(first))) {
    host = (Array.isArray(args[0]) ? undefined : args[1]) ?? "localhost";
    if (typeof host === "function") host = "localhost";
  } // a string that is not a port is a unix socket path
  if (!allowed(host)) {
    const err = refuse("connect", host);
    process.nextTick(() => this.destroy(err));
    return this;
  }
  return connect.apply(this, args);
};

const lookup = dns.lookup;
dns.lookup = function guardedLookup(hostname, ...rest) {
  if (!allowed(hostname)) {
    const err = refuse("dns.lookup", hostname);
    const cb = rest[rest.length - 1];
    if (typeof cb === "function") {
      process.nextTick(() => cb(err));
      return {};
    }
    throw err;
  }
  return lookup.call(this, hostname, ...rest);
};

const lookupPromise = dns.promises.lookup;
dns.promises.lookup = async function guardedLookupPromise(hostname, ...rest) {
  if (!allowed(hostname)) throw refuse("dns.promises.lookup", hostname);
  return lookupPromise.call(this, hostname, ...rest);
};
