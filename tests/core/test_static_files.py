"""Static files come from whitenoise, before any Django view: with caching headers, from the
app's folders (no collectstatic needed)."""

from django.test import Client


def test_static_files_are_served_with_cache_headers(db):
    client = Client()
    plain = client.get("/static/css/app.css")
    assert plain.status_code == 200
    assert plain["Content-Type"].startswith("text/css")
    assert "max-age" in plain["Cache-Control"]
    body = b"".join(plain.streaming_content)
    assert b"{" in body
    assert client.get("/static/css/nope.css").status_code == 404


def test_a_static_file_needs_no_session_or_database_query(db, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = Client().get("/static/js/vote.js")
    assert response.status_code == 200 and "Set-Cookie" not in response
