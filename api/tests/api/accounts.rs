//! Accounts and access: users kept apart on every route (R14), cookie sessions and their
//! form tokens, the sign-in throttle, API tokens, password changes.

use super::*;

/// R14: every route that takes an id, as user B (token and signed-in session) against user
/// A's job: 404 every time, never 403, never data; A and an admin are served. Signed
/// download links work without credentials; altered or expired ones are 403.
#[tokio::test]
async fn r14_another_users_job_is_404_on_every_route_and_bad_links_are_403() {
    let app = TestApp::spawn().await;
    let job = finished_job(&app, &app.http).await;
    let id = job["id"].as_str().unwrap().to_string();
    let (bob, bob_http) = app.other_user("bob@example.com", Role::Member).await;
    let (_, admin_http) = app.other_user("root@example.com", Role::Admin).await;
    let bob_session = app.sign_in("bob@example.com").await;

    // Every documented route with {id}, every method, plus the pages and every file.
    let (_, doc) = app.get_json("/api/v1/openapi.json").await;
    let mut routes: Vec<(reqwest::Method, String)> = Vec::new();
    for (path, operations) in doc["paths"].as_object().unwrap() {
        if !path.contains("{id}") || path.starts_with("/api/v1/tokens") {
            continue;
        }
        for method in operations.as_object().unwrap().keys() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            if path.contains("{file}") {
                for file in [
                    "minutes.pdf",
                    "minutes.json",
                    "transcript.txt",
                    "transcript.srt",
                    "transcript.vtt",
                    "transcript.json",
                ] {
                    routes
                        .push((method.clone(), path.replace("{id}", &id).replace("{file}", file)));
                }
            } else {
                routes.push((method.clone(), path.replace("{id}", &id)));
            }
        }
    }
    routes.push((reqwest::Method::GET, format!("/jobs/{id}")));
    routes.push((reqwest::Method::POST, format!("/jobs/{id}/retry")));
    assert!(routes.len() >= 14, "{routes:?}");
    let mut report = Vec::new();
    for (method, path) in &routes {
        let body = serde_json::json!({"from": "summarize"});
        let by_token =
            bob_http.request(method.clone(), app.url(path)).json(&body).send().await.unwrap();
        let token_status = by_token.status();
        let token_body = by_token.text().await.unwrap();
        let by_session = app
            .anon
            .request(method.clone(), app.url(path))
            .header("cookie", &bob_session.cookie)
            .header("x-csrf-token", &bob_session.csrf)
            .form(&[("csrf", bob_session.csrf.as_str())])
            .send()
            .await
            .unwrap();
        let session_status = by_session.status();
        let session_body = by_session.text().await.unwrap();
        assert_eq!(
            token_status,
            StatusCode::NOT_FOUND,
            "{method} {path} as B by token: {token_body}"
        );
        assert_eq!(
            session_status,
            StatusCode::NOT_FOUND,
            "{method} {path} as B by session: {session_body}"
        );
        for body in [&token_body, &session_body] {
            assert!(
                !body.contains("a.wav") && !body.contains(" of "),
                "{method} {path} leaked: {body}"
            );
        }
        report.push(format!("{method} {path}: token {token_status}, session {session_status}"));
    }
    eprintln!("R14 sweep as user B against user A's job:\n  {}", report.join("\n  "));
    // Without credentials: 401 for the API, the sign-in page for pages.
    let anonymous = app.anon.get(app.url(&format!("/api/v1/jobs/{id}"))).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let page = app.anon.get(app.url(&format!("/jobs/{id}"))).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert!(page.headers()["location"].to_str().unwrap().starts_with("/login?next="));
    // B's own list has nothing; A's and the admin's have the job.
    let bob_list: Value =
        bob_http.get(app.url("/api/v1/jobs")).send().await.unwrap().json().await.unwrap();
    assert!(bob_list["jobs"].as_array().unwrap().is_empty());
    let bob_page = bob_http.get(app.url("/jobs")).send().await.unwrap().text().await.unwrap();
    assert!(!bob_page.contains(&id), "B's recent jobs page lists nothing of A's");
    let admin_view = admin_http.get(app.url(&format!("/api/v1/jobs/{id}"))).send().await.unwrap();
    assert_eq!(admin_view.status(), StatusCode::OK);
    assert_eq!(app.get_json(&format!("/api/v1/jobs/{id}")).await.0, StatusCode::OK);

    // A's signed link works with no credentials, for its file only.
    let link = job["links"]["files"]["minutes.pdf"].as_str().unwrap().to_string();
    assert!(link.contains("&expires=") && link.contains("&sig="), "{link}");
    let fetched = app.anon.get(app.url(&link)).send().await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(fetched.text().await.unwrap(), format!("minutes.pdf of {id}"));
    let (path, query) = link.split_once('?').unwrap();
    let param = |name: &str| {
        query.split('&').find_map(|p| p.strip_prefix(&format!("{name}="))).unwrap().to_string()
    };
    let (user, expires, sig) = (param("user"), param("expires"), param("sig"));
    let mut flipped = sig.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    let other_job = finished_job(&app, &bob_http).await;
    let other_id = other_job["id"].as_str().unwrap();
    let expired = {
        let key: Vec<u8> =
            sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = 'download_links'")
                .fetch_one(app.repo.pool())
                .await
                .unwrap();
        let signer = minutes_api::signing::Signer::new(key, 900);
        let past = chrono::Utc::now().timestamp() - 1;
        format!(
            "{path}?{}",
            signer.sign_until(
                user.parse().unwrap(),
                &minutes_api::downloads::link_resource(id.parse().unwrap(), None, "minutes.pdf"),
                past
            )
        )
    };
    let tampered = [
        ("signature changed", format!("{path}?user={user}&expires={expires}&sig={flipped}")),
        (
            "expiry moved",
            format!(
                "{path}?user={user}&expires={}&sig={sig}",
                expires.parse::<i64>().unwrap() + 3600
            ),
        ),
        ("user changed", format!("{path}?user={}&expires={expires}&sig={sig}", bob.id)),
        ("file changed", format!("{}?{query}", path.replace("minutes.pdf", "transcript.txt"))),
        ("job changed", format!("{}?{query}", path.replace(&id, other_id))),
        ("signature cut", format!("{path}?user={user}&expires={expires}&sig=")),
        ("garbage", format!("{path}?user=x&expires=y&sig=%00")),
        ("expired", expired),
    ];
    for (what, url) in tampered {
        let response = app.anon.get(app.url(&url)).send().await.unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {url}: {body}");
        assert!(!body.contains(" of "), "{what}: {body}");
        eprintln!("R14 link {what}: {status}");
    }
    // B's token cannot revoke A's tokens either.
    let tokens: Value =
        app.http.get(app.url("/api/v1/tokens")).send().await.unwrap().json().await.unwrap();
    let token_id = tokens[0]["id"].as_str().unwrap();
    let revoke =
        bob_http.delete(app.url(&format!("/api/v1/tokens/{token_id}"))).send().await.unwrap();
    assert_eq!(revoke.status(), StatusCode::NOT_FOUND);
    let revoke_page = app
        .anon
        .post(app.url(&format!("/settings/tokens/{token_id}/revoke")))
        .header("cookie", &bob_session.cookie)
        .form(&[("csrf", bob_session.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoke_page.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get_json("/api/v1/jobs").await.0, StatusCode::OK, "A's token still works");
    app.finish().await;
}

#[tokio::test]
async fn cookie_sessions_need_the_form_token_on_every_write() {
    let app = TestApp::spawn().await;
    let session = app.sign_in("ann@example.com").await;
    let id = app.upload("a.wav", read(&fixture("formats/hello_u8_8k.wav")), &[]).await;
    let id = id.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    app.http.post(app.url(&format!("/api/v1/jobs/{id}/cancel"))).send().await.unwrap();
    let with_cookie = |method: reqwest::Method, path: &str| {
        app.anon.request(method, app.url(path)).header("cookie", &session.cookie)
    };
    // Forms without the token, with a wrong one: 403, nothing changes.
    for token in [None, Some("wrong")] {
        let mut form: Vec<(&str, &str)> = vec![("name", "x")];
        if let Some(token) = token {
            form.push(("csrf", token));
        }
        for path in [format!("/jobs/{id}/retry"), "/settings/tokens".into(), "/logout".into()] {
            let response =
                with_cookie(reqwest::Method::POST, &path).form(&form).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path} with {token:?}");
        }
        let api = with_cookie(reqwest::Method::POST, &format!("/api/v1/jobs/{id}/retry"))
            .send()
            .await
            .unwrap();
        assert_eq!(api.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(
        app.repo.get(id.parse().unwrap()).await.unwrap().unwrap().state.as_str(),
        "cancelled"
    );
    // The upload form: no token, or the token after the file: 403 and nothing stored.
    let before = app.stored_files();
    let wav = read(&fixture("formats/hello_u8_8k.wav"));
    for with_token_after in [false, true] {
        let mut form = Form::new().part("file", Part::bytes(wav.clone()).file_name("b.wav"));
        if with_token_after {
            form = form.text("csrf", session.csrf.clone());
        }
        let response =
            with_cookie(reqwest::Method::POST, "/upload").multipart(form).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(app.stored_files(), before, "nothing stored");
    // The sign-in form without its cookie.
    let login = app
        .anon
        .post(app.url("/login"))
        .form(&[("email", "ann@example.com"), ("password", PASSWORD), ("csrf", "made-up")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::FORBIDDEN);
    // With the token everything works.
    let retry = with_cookie(reqwest::Method::POST, &format!("/jobs/{id}/retry"))
        .form(&[("csrf", session.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.repo.get(id.parse().unwrap()).await.unwrap().unwrap().state.as_str(), "queued");
    let form = Form::new()
        .text("csrf", session.csrf.clone())
        .part("file", Part::bytes(wav).file_name("c.wav"));
    let upload =
        with_cookie(reqwest::Method::POST, "/upload").multipart(form).send().await.unwrap();
    assert_eq!(upload.status(), StatusCode::SEE_OTHER);
    let logout = with_cookie(reqwest::Method::POST, "/logout")
        .form(&[("csrf", session.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    let after = with_cookie(reqwest::Method::GET, "/").send().await.unwrap();
    assert_eq!(after.status(), StatusCode::SEE_OTHER, "the session ended");
    app.finish().await;
}

#[tokio::test]
async fn sign_in_is_throttled_per_account_and_address_and_never_says_whether_an_email_exists() {
    let app = TestApp::spawn_with(|s| {
        s.access.login_attempts_per_account = 3;
        s.access.login_attempts_per_address = 6;
    })
    .await;
    let stored: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE email = 'ann@example.com'")
            .fetch_one(app.repo.pool())
            .await
            .unwrap();
    assert!(stored.starts_with("$argon2id$v=19$"), "argon2id: {stored}");
    let app_ref = &app;
    let attempt = |email: &'static str, password: &'static str| async move {
        let login = app_ref.anon.get(app_ref.url("/login")).send().await.unwrap();
        let cookie = set_cookie_pair(&login, "minutes_login");
        let token = hidden_value(&login.text().await.unwrap(), "csrf");
        let response = app_ref
            .anon
            .post(app_ref.url("/login"))
            .header("cookie", cookie)
            .form(&[("email", email), ("password", password), ("csrf", &token)])
            .send()
            .await
            .unwrap();
        let status = response.status();
        let retry_after =
            response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
        let page = response.text().await.unwrap();
        let error =
            page.split("id=\"error\">").nth(1).map(|r| r.split('<').next().unwrap().to_string());
        (status, retry_after, error)
    };
    let wrong = attempt("ann@example.com", "not the password").await;
    let unknown = attempt("nobody@example.com", "not the password").await;
    assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
    assert_eq!((wrong.0, &wrong.2), (unknown.0, &unknown.2), "the same answer either way");
    attempt("ann@example.com", "still not it").await;
    attempt("ann@example.com", "nor this").await;
    // The account is now locked for a while, even with the right password.
    let locked = attempt("ann@example.com", PASSWORD).await;
    assert_eq!(locked.0, StatusCode::TOO_MANY_REQUESTS, "{locked:?}");
    let wait: u64 = locked.1.expect("Retry-After").parse().unwrap();
    assert!((1..=900).contains(&wait), "{wait}");
    // An unknown email locks the same way: no hint that it does not exist.
    for _ in 0..2 {
        attempt("nobody@example.com", "guess").await;
    }
    assert_eq!(attempt("nobody@example.com", "guess").await.0, StatusCode::TOO_MANY_REQUESTS);
    // Six failures from this address: every account is refused from here now.
    let (_, _) = app.other_user("carl@example.com", Role::Member).await;
    let from_here = attempt("carl@example.com", PASSWORD).await;
    assert_eq!(from_here.0, StatusCode::TOO_MANY_REQUESTS, "{from_here:?}");
    // The token route's password sign-in is under the same throttle.
    let basic = app.token_by_password("carl@example.com", PASSWORD, "cli").await;
    assert_eq!(basic.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(basic.headers().contains_key("retry-after"));
    app.finish().await;
}

#[tokio::test]
async fn tokens_are_shown_once_stored_hashed_and_stop_when_revoked() {
    let app = TestApp::spawn().await;
    let made = app.token_by_password("ann@example.com", PASSWORD, "laptop").await;
    assert_eq!(made.status(), StatusCode::CREATED);
    let made: Value = made.json().await.unwrap();
    let secret = made["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("mnt_") && secret.len() > 40, "{secret}");
    let client = bearer_client(&secret);
    assert_eq!(client.get(app.url("/api/v1/jobs")).send().await.unwrap().status(), StatusCode::OK);
    let listed = client.get(app.url("/api/v1/tokens")).send().await.unwrap().text().await.unwrap();
    assert!(listed.contains("laptop") && !listed.contains(&secret), "{listed}");
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
        .fetch_all(app.repo.pool())
        .await
        .unwrap();
    assert!(stored.iter().all(|h| h.len() == 32 && h.as_slice() != secret.as_bytes()));
    let wrong_password = app.token_by_password("ann@example.com", "nope", "x").await;
    assert_eq!(wrong_password.status(), StatusCode::UNAUTHORIZED);
    let revoked = client
        .delete(app.url(&format!("/api/v1/tokens/{}", made["id"].as_str().unwrap())))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let after = client.get(app.url("/api/v1/jobs")).send().await.unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    assert!(after.headers().contains_key("www-authenticate"));
    // The settings page shows a new token once and lists it after.
    let session = app.sign_in("ann@example.com").await;
    let page = app
        .anon
        .post(app.url("/settings/tokens"))
        .header("cookie", &session.cookie)
        .form(&[("csrf", session.csrf.as_str()), ("name", "from the page")])
        .send()
        .await
        .unwrap();
    assert_eq!(page.headers()["cache-control"], "no-store");
    let page = page.text().await.unwrap();
    let shown = page.split("<code id=\"new-token\">").nth(1).unwrap().split('<').next().unwrap();
    assert_eq!(
        bearer_client(shown).get(app.url("/api/v1/jobs")).send().await.unwrap().status(),
        StatusCode::OK
    );
    let again = app
        .anon
        .get(app.url("/settings"))
        .header("cookie", &session.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(again.contains("from the page") && !again.contains(shown));
    app.finish().await;
}

#[tokio::test]
async fn a_password_change_needs_the_current_one_and_signs_out_other_browsers() {
    let app = TestApp::spawn().await;
    let here = app.sign_in("ann@example.com").await;
    let elsewhere = app.sign_in("ann@example.com").await;
    let change = |current: &'static str, new: &'static str, repeat: &'static str| {
        app.anon
            .post(app.url("/settings/password"))
            .header("cookie", &here.cookie)
            .form(&[
                ("csrf", here.csrf.as_str()),
                ("current", current),
                ("new", new),
                ("repeat", repeat),
            ])
            .send()
    };
    for (current, new, repeat, says) in [
        ("wrong password!", "a new passphrase", "a new passphrase", "current password is wrong"),
        (PASSWORD, "a new passphrase", "another phrase!!", "differ"),
        (PASSWORD, "short", "short", "too short"),
    ] {
        let refused = change(current, new, repeat).await.unwrap();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        assert!(refused.text().await.unwrap().contains(says), "{says}");
    }
    let changed = change(PASSWORD, "a new passphrase", "a new passphrase").await.unwrap();
    assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    let renewed = set_cookie_pair(&changed, "minutes_session");
    let page = |cookie: String| app.anon.get(app.url("/settings")).header("cookie", cookie).send();
    assert_eq!(page(renewed).await.unwrap().status(), StatusCode::OK, "this browser stays in");
    assert_eq!(
        page(elsewhere.cookie.clone()).await.unwrap().status(),
        StatusCode::SEE_OTHER,
        "others are out"
    );
    assert_eq!(
        page(here.cookie.clone()).await.unwrap().status(),
        StatusCode::SEE_OTHER,
        "the old cookie is dead"
    );
    let stored: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE email = 'ann@example.com'")
            .fetch_one(app.repo.pool())
            .await
            .unwrap();
    assert!(
        stored.starts_with("$argon2id$")
            && minutes_shared::accounts::verify_password("a new passphrase", &stored)
    );
    app.finish().await;
}
