// A tiny JSON API on node:http. Add routes to `routes`; Vite proxies /api/* here during development.
import { createServer } from 'node:http'

const port = Number(process.env.API_PORT ?? 3001)

const items = [
  { id: 1, title: 'Describe your app in the chat', done: true },
  { id: 2, title: 'Watch it being built', done: false },
]

const routes = {
  'GET /api/health': () => ({ status: 'ok', time: new Date().toISOString() }),
  'GET /api/items': () => items,
  'POST /api/items': (body) => {
    const item = { id: Date.now(), title: String(body?.title ?? 'Untitled'), done: false }
    items.push(item)
    return item
  },
}

function readJson(req) {
  return new Promise((resolve) => {
    let data = ''
    req.on('data', (chunk) => (data += chunk))
    req.on('end', () => {
      try {
        resolve(data ? JSON.parse(data) : undefined)
      } catch {
        resolve(undefined)
      }
    })
  })
}

createServer(async (req, res) => {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname
  const handler = routes[`${req.method} ${path}`]
  res.setHeader('Content-Type', 'application/json')
  if (!handler) {
    res.statusCode = 404
    res.end(JSON.stringify({ error: 'Not found' }))
    return
  }
  const result = handler(req.method === 'POST' ? await readJson(req) : undefined)
  res.end(JSON.stringify(result))
}).listen(port, '127.0.0.1', () => console.log(`API listening on http://127.0.0.1:${port}`))
