'use strict'
// The JS reference connector (ilp-connector) set up like riptide in benches/forwarding.sh:
// two ILP-over-HTTP peers in USD at scale 2, `loader` (sends to us with a bearer token)
// and `sink` (we forward to it), a static route test.sink -> sink, 1:1 rate, no spread,
// no rate limit that a 10-second run could reach, no balance limit that would reject.
//
// Environment:
//   REFERENCE_LOADER_PORT  port the loader's plugin listens on (loadgen --target http://127.0.0.1:PORT/ilp)
//   REFERENCE_LOADER_TOKEN bearer token the loader sends
//   REFERENCE_SINK_PORT    port the sink's plugin listens on (required by ilp-plugin-http; unused)
//   REFERENCE_SINK_URL     the sink's ILP-over-HTTP URL, e.g. http://127.0.0.1:4000/ilp
//   REFERENCE_SINK_TOKEN   bearer token sent to the sink (default: to-sink)
// Prints "reference connector ready" on stdout once both plugins listen.

const { createApp } = require('ilp-connector')

function required (name) {
  const value = process.env[name]
  if (!value) {
    console.error(`connector.js: ${name} is not set`)
    process.exit(2)
  }
  return value
}

const loaderPort = Number(required('REFERENCE_LOADER_PORT'))
const loaderToken = required('REFERENCE_LOADER_TOKEN')
const sinkPort = Number(required('REFERENCE_SINK_PORT'))
const sinkUrl = required('REFERENCE_SINK_URL')
const sinkToken = process.env.REFERENCE_SINK_TOKEN || 'to-sink'

// The rateLimit middleware defaults to 10,000 packets per 60 s per account; a bucket
// this large never runs dry in a benchmark.
const noRateLimit = { refillPeriod: 1000, refillCount: 1e12, capacity: 1e12 }

const common = {
  relation: 'peer',
  assetCode: 'USD',
  assetScale: 2,
  plugin: 'ilp-plugin-http',
  sendRoutes: false,
  receiveRoutes: false,
  rateLimit: noRateLimit
}

const connector = createApp({
  ilpAddress: 'test.reference',
  backend: 'one-to-one',
  spread: 0,
  store: 'memory',
  // Left on: it is also what loads the configured routes. With sendRoutes and
  // receiveRoutes off on both peers no route messages are exchanged.
  defaultRoute: '',
  routes: [{ targetPrefix: 'test.sink', peerId: 'sink' }],
  accounts: {
    loader: {
      ...common,
      // The loader owes the connector; tracked, never limiting.
      balance: { minimum: '-Infinity', maximum: 'Infinity' },
      options: {
        incoming: { port: loaderPort, staticToken: loaderToken },
        // The connector never sends to the loader; ilp-plugin-http still wants a URL.
        outgoing: { url: 'http://127.0.0.1:9/ilp', staticToken: 'unused' }
      }
    },
    sink: {
      ...common,
      balance: { minimum: '-Infinity', maximum: 'Infinity' },
      options: {
        incoming: { port: sinkPort, staticToken: 'unused-' + loaderToken },
        outgoing: { url: sinkUrl, staticToken: sinkToken }
      }
    }
  }
})

connector.listen().then(() => {
  console.log('reference connector ready')
}, (error) => {
  console.error('connector.js: failed to start:', error && error.stack ? error.stack : error)
  process.exit(1)
})

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    connector.shutdown().then(() => process.exit(0), () => process.exit(1))
    setTimeout(() => process.exit(0), 2000).unref()
  })
}
