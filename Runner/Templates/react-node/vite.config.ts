import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'

const apiPort = process.env.API_PORT ?? '3001'

// allowedHosts: previews reach the dev server through preview-*.localhost names, relays and tunnels.
// warmup: the entry (and what it imports) is transformed as the server starts, not when the preview first asks
// for it, so the page renders as soon as the preview opens.
export default defineConfig({
  plugins: [react()],
  server: {
    allowedHosts: true,
    warmup: { clientFiles: ['./src/main.tsx'] },
    proxy: {
      '/api': `http://127.0.0.1:${apiPort}`,
    },
  },
})
