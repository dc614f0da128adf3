import { defineConfig } from 'astro/config'

// allowedHosts: previews reach the dev server through preview-*.localhost names, relays and tunnels.
export default defineConfig({
  vite: {
    server: {
      allowedHosts: true,
    },
  },
})
