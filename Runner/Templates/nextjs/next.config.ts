import type { NextConfig } from 'next'

// Previews reach the dev server through preview-*.localhost names, relays and tunnels.
const nextConfig: NextConfig = {
  allowedDevOrigins: ['*.localhost', '*.trycloudflare.com'],
}

export default nextConfig
