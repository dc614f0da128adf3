import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'

// allowedHosts: previews reach the dev server through preview-*.localhost names, relays and tunnels.
export default defineConfig({
  plugins: [react()],
  server: {
    allowedHosts: true,
  },
})
