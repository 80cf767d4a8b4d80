import type { ComponentChildren } from 'preact';

/** The frame of pages shown before sign-in: no navigation, no session. */
export function BareLayout({ title, styles, children }: { title: string; styles: string[]; children: ComponentChildren }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        {/* no favicon request: the browser would ask for /favicon.ico on every page */}
        <link rel="icon" href="data:," />
        <title>{`${title} · egress-triage`}</title>
        {styles.map((href) => (
          <link rel="stylesheet" href={href} />
        ))}
      </head>
      <body>
        <main id="main">{children}</main>
      </body>
    </html>
  );
}
