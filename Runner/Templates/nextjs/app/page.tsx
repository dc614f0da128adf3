const features = [
  { title: 'App Router', text: 'Pages and layouts live in app/. Server components by default.' },
  { title: 'API routes', text: 'Add app/api/<name>/route.ts for JSON endpoints.' },
  { title: 'Just ask', text: 'Describe the next change in the chat and watch it appear.' },
]

export default function Home() {
  return (
    <main className="page">
      <section className="hero">
        <span className="badge">Next.js</span>
        <h1>
          Your app is <span className="accent">live</span>.
        </h1>
        <p className="lead">
          Edit <code>app/page.tsx</code> — the page updates as you save.
        </p>
      </section>
      <section className="cards">
        {features.map((f) => (
          <article key={f.title} className="card">
            <h2>{f.title}</h2>
            <p>{f.text}</p>
          </article>
        ))}
      </section>
      <footer className="footer">Built with SentryVibe</footer>
    </main>
  )
}
