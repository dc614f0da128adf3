import { useEffect, useState } from 'react'
import './App.css'

type Item = { id: number; title: string; done: boolean }

export default function App() {
  const [items, setItems] = useState<Item[]>([])
  const [title, setTitle] = useState('')
  const [error, setError] = useState<string | null>(null)

  useEffect(() => {
    fetch('/api/items')
      .then((r) => r.json())
      .then(setItems)
      .catch(() => setError('The API is not reachable yet.'))
  }, [])

  async function add(event: React.FormEvent) {
    event.preventDefault()
    if (!title.trim()) return
    const response = await fetch('/api/items', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ title }),
    })
    const item: Item = await response.json()
    setItems((current) => [...current, item])
    setTitle('')
  }

  return (
    <main className="page">
      <section className="hero">
        <span className="badge">React + Node API</span>
        <h1>
          Front end and API, <span className="accent">together</span>.
        </h1>
        <p className="lead">
          The UI lives in <code>src/</code>, the JSON API in <code>server/index.js</code>.
          <code>npm run dev</code> starts both.
        </p>
      </section>
      <section className="panel">
        <form onSubmit={add} className="row">
          <input value={title} onChange={(e) => setTitle(e.target.value)} placeholder="Add an item…" />
          <button type="submit">Add</button>
        </form>
        {error && <p className="error">{error}</p>}
        <ul className="items">
          {items.map((item) => (
            <li key={item.id} className={item.done ? 'done' : ''}>
              {item.title}
            </li>
          ))}
        </ul>
      </section>
      <footer className="footer">Built with SentryVibe</footer>
    </main>
  )
}
