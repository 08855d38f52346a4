// An ILP-over-HTTP peer over TLS, made with Node's own https server and ilp-packet,
// for Riptide's TLS tests: it fulfills each Prepare with the first 32 bytes of its
// data, and counts the TLS connections it accepted.
//   node https_sink.js <port> <keyFile> <certFile> <token>
//   node https_sink.js <port> plain - <token>     (the same sink over plain HTTP,
//                                                  for benches/tls.sh to compare)
//   prints {"listening": port}, then {"connections": n, "served": n} each second
'use strict'
const http = require('http')
const https = require('https')
const fs = require('fs')
const IlpPacket = require('ilp-packet')

const [port, keyFile, certFile, token] = process.argv.slice(2)
let served = 0
let connections = 0

function print (object) {
  process.stdout.write(JSON.stringify(object) + '\n')
}

function handle (request, response) {
  const chunks = []
  request.on('data', (chunk) => chunks.push(chunk))
  request.on('end', () => {
    if (request.headers.authorization !== 'Bearer ' + token) {
      response.writeHead(401)
      response.end()
      return
    }
    const prepare = IlpPacket.deserializeIlpPrepare(Buffer.concat(chunks))
    const fulfill = IlpPacket.serializeIlpFulfill({
      fulfillment: prepare.data.slice(0, 32),
      data: Buffer.from('over tls')
    })
    served++
    response.writeHead(200, { 'Content-Type': 'application/octet-stream' })
    response.end(fulfill)
  })
}

const plain = keyFile === 'plain'
const server = plain
  ? http.createServer(handle)
  : https.createServer({ key: fs.readFileSync(keyFile), cert: fs.readFileSync(certFile) }, handle)
server.on(plain ? 'connection' : 'secureConnection', () => { connections++ })
server.keepAliveTimeout = 5000
server.listen(Number(port), '127.0.0.1', () => print({ listening: Number(port) }))
setInterval(() => print({ connections, served }), 1000)
