import time, smtplib
from servers import unique_address
from test_smtp_sender import envelope
from service.mail.smtp import SmtpSender
def test_probe(mail_servers):
    d, p = mail_servers
    u = unique_address(); d.add_user(u)
    t=time.time()
    s = smtplib.SMTP(p.host, p.smtp_port); print("connect", round(time.time()-t,3))
    s.set_debuglevel(2)
    e = envelope(u, "someone@elsewhere.test")
    print(s.sendmail(e.sender, list(e.recipients), e.data)); print("send", round(time.time()-t,3))
    s.quit(); print("quit", round(time.time()-t,3))
