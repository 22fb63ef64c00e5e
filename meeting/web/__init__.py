"""Server-rendered pages (Jinja2, Vietnamese first, a little plain JS, no CDN)."""
