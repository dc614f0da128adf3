import { useState } from 'react'
import './App.css'

const ideas = [
  'Add a dark mode toggle',
  'Turn this into a todo app with filters',
  'Show a chart of the last 7 days',
]

export default function App() {
  const [count, setCount] = useState(0)

  return (
    <main className="page">
      <section className="hero">
        <span className="badge">React + Vite</span>
        <h1>
          Your app is <span className="accent">live</span>.
        </h1>
        <p className="lead">
          Edit <code>src/App.tsx</code> or just describe the change you want in the chat —
          the page reloads as soon as the files change.
        </p>
        <button className="counter" onClick={() => setCount((c) => c + 1)}>
          Clicked {count} {count === 1 ? 'time' : 'times'}
        </button>
      </section>
      <section className="cards">
        {ideas.map((idea) => (
          <article key={idea} className="card">
            <h2>Try asking</h2>
            <p>“{idea}”</p>
          </article>
        ))}
      </section>
      <footer className="footer">Built with SentryVibe</footer>
    </main>
  )
}
