import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'

const apiPort = process.env.API_PORT ?? '3001'

// allowedHosts: previews reach the dev server through preview-*.localhost names, relays and tunnels.
export default defineConfig({
  plugins: [react()],
  server: {
    allowedHosts: true,
    proxy: {
      '/api': `http://127.0.0.1:${apiPort}`,
    },
  },
})
