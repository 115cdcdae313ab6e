/* DingTalk 免登 on the sign-in page: ask the JSAPI (loaded just before this file) for a one-time
   auth code, post it with the page's state, then open the page the person asked for.
   Plain ES5: DingTalk's in-app browser is not always recent. */
(function(){
  var box=document.getElementById('dingtalk-sign-in');
  var status=document.getElementById('sign-in-status');
  if(!box||!status){return}
  var done=false;
  function say(text,phase){status.textContent=text;status.setAttribute('data-phase',phase)}
  function failed(text){if(!done){done=true;say(text,'failed')}}
  function send(code){
    if(done){return}
    done=true;
    var xhr=new XMLHttpRequest();
    xhr.open('POST',box.getAttribute('data-post-to'));
    xhr.setRequestHeader('Content-Type','application/json');
    xhr.onload=function(){
      var answer={};
      try{answer=JSON.parse(xhr.responseText)}catch(e){}
      if(xhr.status===200&&answer.next){say('登录成功，正在打开……','done');location.replace(answer.next)}
      else{say(answer.message||'登录失败，请重新打开页面。','failed')}
    };
    xhr.onerror=function(){say('网络不通，请稍后重试。','failed')};
    xhr.send(JSON.stringify({code:code,state:box.getAttribute('data-state')}));
  }
  var dd=window.dd;
  if(!dd){failed('没有加载到钉钉的接口：请在钉钉中打开本页面。');return}
  function ask(){
    var perm=dd.runtime&&dd.runtime.permission;
    var args={corpId:box.getAttribute('data-corp-id'),clientId:box.getAttribute('data-client-id'),
      onSuccess:function(r){send(r&&r.code)},onFail:function(){failed('钉钉没有给出登录码，请重新打开页面。')}};
    args.success=args.onSuccess;args.fail=args.onFail;
    var answer;
    if(perm&&perm.requestAuthCode){answer=perm.requestAuthCode(args)}
    else if(dd.requestAuthCode){answer=dd.requestAuthCode(args)}
    else{failed('这个版本的钉钉不支持免登，请升级钉钉。');return}
    if(answer&&typeof answer.then==='function'){answer.then(args.onSuccess,args.onFail)}
  }
  if(typeof dd.ready==='function'){dd.ready(ask)}else{ask()}
  if(typeof dd.error==='function'){dd.error(function(){failed('钉钉接口出错，请重新打开页面。')})}
})();
