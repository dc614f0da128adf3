import type { Metadata } from 'next'
import './globals.css'

export const metadata: Metadata = {
  title: 'SentryVibe App',
  description: 'A Next.js app built with SentryVibe',
}

export default function RootLayout({ children }: Readonly<{ children: React.ReactNode }>) {
  return (
    <html lang="en">
      <body>{children}</body>
    </html>
  )
}
